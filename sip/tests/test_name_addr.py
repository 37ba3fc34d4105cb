"""name_addr and tag_of read past quoted display names, escapes included (RFC 3261 §25.1)."""

import pytest

from sip.errors import SipSyntaxError
from sip.headers import name_addr, tag_of


@pytest.mark.parametrize(
    ("value", "uri", "tag"),
    [
        (b"<sip:a@h>;tag=1", b"sip:a@h", b"1"),
        (b'"Dialer 7" <sip:a@h>;tag=2', b"sip:a@h", b"2"),
        (b'"not <this>;tag=x" <sip:a@h>;tag=3', b"sip:a@h", b"3"),
        (b'"a \\" quote <x>" <sip:a@h>;tag=4', b"sip:a@h", b"4"),  # an escaped quote stays inside
        (b'"a backslash \\\\" <sip:a@h>;tag=5', b"sip:a@h", b"5"),  # an escaped backslash does not
        (b'"one" "two" <sip:a@h>;tag=6', b"sip:a@h", b"6"),
        (b"sip:a@h;tag=7", b"sip:a@h", b"7"),
    ],
)
def test_the_address_and_tag_come_from_outside_the_quotes(value, uri, tag):
    assert name_addr(value, "From")[0] == uri
    assert tag_of(value, "From") == tag


def test_an_unterminated_quote_is_an_error_naming_the_header():
    with pytest.raises(SipSyntaxError, match="unterminated") as err:
        name_addr(b'"open <sip:a@h>;tag=1', "From")
    assert err.value.header == "From"


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        (b'"a"' * 16000 + b" <sip:a@h>", b"sip:a@h"),  # thousands of quoted strings
        (b'"' + b'\\"' * 20000 + b'" <sip:a@h>', b"sip:a@h"),  # thousands of escapes in one
        (b'"a"' * 16000 + b" sip:a@h", b'"a"' * 16000 + b" sip:a@h"),  # no "<": the whole value, as before
    ],
)
def test_a_value_made_of_quotes_is_read_in_one_pass(value, uri):
    # a loop in Python per quoted string or escape held the event loop 8-13 ms for 60 KB of them
    # (bench/README.md); the answer must stay right where the scan is a regex
    assert name_addr(value, "From")[0] == uri
