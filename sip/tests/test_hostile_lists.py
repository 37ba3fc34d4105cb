"""Comma lists and folded lines cost work in proportion to their length, whatever their shape: one
64 KB Via of "<" and 65,000 commas held the event loop 1.3-2 s (each piece cut inside <...> was
rejoined to the growing element and its brackets recounted), 16,000 folded lines 16-35 ms. The
timings are in bench/hostile_input.py; here, what is split and joined, and a count of the bytes
the splitting reads, which grew with the square of the commas."""

import random
import sys

import pytest

from sip.errors import SipSyntaxError
from sip.headers import split_commas
from sip.message import parse_message


def _bytes_read_by_bytes_methods(fn, *args):
    """Total length of the bytes objects whose methods (count, find, strip, split...) `fn` calls."""
    total = 0

    def profile(frame, event, arg):
        nonlocal total
        if event == "c_call" and isinstance(getattr(arg, "__self__", None), bytes):
            total += len(arg.__self__)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn(*args)
    finally:
        sys.setprofile(previous)
    return total


@pytest.mark.parametrize("value", [b"<" + b"," * 4096, b"<sip:a" + b",b" * 2048, b"<a," * 1365 + b">"])
def test_splitting_reads_each_byte_a_few_times_not_once_per_comma(value):
    assert _bytes_read_by_bytes_methods(split_commas, value, "Via") <= 4 * len(value)


def test_the_fuzzed_via_of_commas_after_a_lt_is_one_element():
    value = b"<" + b"," * 65504
    assert split_commas(value, "Via") == [value]
    msg = parse_message(b"SIP/2.0 200 OK\r\nVia: " + value + b"\r\n\r\n")
    assert msg.get_all(b"via") == [value]
    with pytest.raises(SipSyntaxError) as err:
        msg.via
    assert err.value.header == "Via"


def _reference(value):
    """RFC 3261 §7.3.1 as a byte loop: commas inside a quoted string (with \\-escapes) or <...>
    do not separate; a quote inside <...> still opens a quoted string. None: a quote not closed."""
    if b"," not in value:
        return [value]
    out, start, in_quote, in_angle, i = [], 0, False, False, 0
    while i < len(value):
        ch = value[i : i + 1]
        if in_quote:
            if ch == b"\\":
                i += 2
                continue
            in_quote = ch != b'"'
        elif ch == b'"':
            in_quote = True
        elif ch == b"<":
            in_angle = True
        elif ch == b">":
            in_angle = False
        elif ch == b"," and not in_angle:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    if in_quote:
        return None
    out.append(value[start:].strip())
    return [p for p in out if p]


def _split_or_none(value):
    try:
        return split_commas(value, "X")
    except SipSyntaxError:
        return None


def test_it_splits_as_the_grammar_says_on_random_lists():
    rng = random.Random(7313)
    alphabet = [b'"', b"<", b">", b",", b"\\", b"a", b" ", b"\t"]
    for _ in range(20000):
        value = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _split_or_none(value) == _reference(value), value


@pytest.mark.parametrize(
    "value, parts",
    [
        (b"<sip:a;lr>, <sip:b;lr>", [b"<sip:a;lr>", b"<sip:b;lr>"]),
        (b"<sip:a,b@c;lr>,<sip:d>", [b"<sip:a,b@c;lr>", b"<sip:d>"]),
        (b'"A, B" <sip:a@b>;tag=1, <sip:c@d>', [b'"A, B" <sip:a@b>;tag=1', b"<sip:c@d>"]),
        (b'"a \\" , b" <sip:x>, y', [b'"a \\" , b" <sip:x>', b"y"]),
        (b'<sip:a;p=">,">, z', [b'<sip:a;p=">,">', b"z"]),
        (b"SIP/2.0/UDP a;branch=1 ,, SIP/2.0/UDP b", [b"SIP/2.0/UDP a;branch=1", b"SIP/2.0/UDP b"]),
        (b"<sip:a, <sip:b>, c", [b"<sip:a, <sip:b>", b"c"]),
        (b"x>, <y", [b"x>", b"<y"]),
    ],
)
def test_it_splits_lists(value, parts):
    assert split_commas(value) == parts


def test_an_unterminated_quote_is_a_syntax_error_naming_the_header():
    with pytest.raises(SipSyntaxError) as err:
        split_commas(b'"a, <sip:b>, c', "Contact")
    assert err.value.header == "Contact"


def test_many_folded_lines_join_into_one_header():
    data = b"OPTIONS sip:a SIP/2.0\r\nSubject: x\r\n" + b" y\r\n" * 16000 + b"Call-ID: c\r\n\r\n"
    msg = parse_message(data)
    assert msg.names == [b"subject", b"call-id"]
    assert msg.get(b"subject") == b"x" + b" y" * 16000
    assert msg.lines[0] == b"Subject: x" + b" y" * 16000


def test_folding_keeps_one_space_between_pieces_of_the_value_and_the_line():
    msg = parse_message(b"OPTIONS sip:a SIP/2.0\r\nSubject:\r\n \t\r\n  a \r\n\t\r\n\tb\r\nTo: <sip:t>\r\n\r\n")
    assert msg.get(b"subject") == b"a b"
    assert msg.lines[0] == b"Subject: a b"
    assert msg.get(b"to") == b"<sip:t>"


@pytest.mark.parametrize("value", [b",", b" , ,", b",,,"])
def test_a_list_of_only_commas_has_no_first_element(value):
    msg = parse_message(b"OPTIONS sip:a SIP/2.0\r\nVia: " + value + b"\r\nRoute: " + value + b"\r\n\r\n")
    assert msg.first_of_list(b"route") is None
    with pytest.raises(SipSyntaxError) as err:
        msg.via  # was IndexError out of first_of_list
    assert err.value.header == "Via"
