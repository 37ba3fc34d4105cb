"""A URI's port is 1-5 ASCII digits and its host a name, an IPv4 address or a bracketed IPv6 one
without a zone: str.isdigit() takes digits int() refuses ('²': ValueError) or reads ('٥'), and
ipaddress takes a zone id of any characters. Whatever the text, parse_uri raises SipSyntaxError."""

import pytest

from sip.errors import SipSyntaxError
from sip.uri import parse_uri


@pytest.mark.parametrize(
    "uri",
    [
        "sip:h:\u00b2",  # superscript two: str.isdigit(), int() raises ValueError
        b"sip:h:\xc2\xb2",  # the same in UTF-8, as a header carries it
        b"sip:h:\xb2".decode("latin-1"),  # as proxy.core decodes a Route
        "sip:h:\u0665\u0660\u0666\u0660",  # Arabic-Indic 5060: int() reads it
        "sip:h:" + "5" * 4301,  # more digits than int() reads
        "sip:h:" + "0" * 5 + "5060",
        "sip:[::1]:\u00b2",
        "sip:h:0",
        "sip:h:65536",
    ],
)
def test_a_port_that_is_not_1_to_5_ascii_digits_is_a_syntax_error(uri):
    with pytest.raises(SipSyntaxError, match="port must be 1-65535"):
        parse_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "sip:[fe80::1%eth0]:5060",
        "sip:[fe80::1%25eth0]",
        "sip:[::1%\x00]",
        "sip:example.com\n;lr",  # "$" matched before a final newline
        "sip:\u00b9.2.3.4",  # superscript one: all "digits" for str.isdigit()
    ],
)
def test_a_host_that_is_no_host_is_a_syntax_error(uri):
    with pytest.raises(SipSyntaxError):
        parse_uri(uri)


def test_good_uris_still_parse():
    assert parse_uri("sip:a@example.com:5060;lr").hostport == "example.com:5060"
    assert parse_uri("sip:[2001:db8::1]:65535").port == 65535
    assert parse_uri("sips:10.0.0.1").effective_port == 5061
