"""Numbers in a message are capped where they are read: int() refuses more than 4300 digits with a
ValueError, and str.isdigit() takes digits int() does not ('²'). Whatever the number, the parser
and the framer raise SipSyntaxError naming the header, nothing else."""

import pytest

from sip.errors import SipSyntaxError
from sip.framing import StreamFramer
from sip.message import parse_message
from sip.tests.fixtures import INVITE

# int() refuses strings of more than 4300 digits (sys.get_int_max_str_digits)
MANY = b"5" * 4301


@pytest.mark.parametrize("value", [MANY, b"5" * 11, b"0" * 11 + b"4"])
def test_a_content_length_of_more_than_ten_digits_is_a_syntax_error(value):
    data = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: " + value + b"\r\n\r\n"
    with pytest.raises(SipSyntaxError) as err:
        parse_message(data)
    assert err.value.header == "Content-Length"


def test_a_content_length_of_ten_digits_is_still_read():
    assert parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 0000000004")).body == b"v=0\n"
    with pytest.raises(SipSyntaxError, match="beyond the body"):
        parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 9999999999"))


@pytest.mark.parametrize("value", [MANY, b"5" * 11])
def test_the_framer_refuses_a_content_length_of_more_than_ten_digits(value):
    with pytest.raises(SipSyntaxError) as err:
        StreamFramer().feed(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: " + value + b"\r\n\r\n")
    assert err.value.header == "Content-Length"
    assert StreamFramer().feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: 0000000004")) == [
        INVITE.replace(b"Content-Length: 4", b"Content-Length: 0000000004")
    ]
