"""A Via sent-by is a host (a name, an IPv4 address or a bracketed IPv6 one) and a port of 1-65535:
anything else is a SipSyntaxError naming Via, never a ValueError (int() of thousands of digits)
and never a Via.host that carries a NUL or a control character on to the resolver and the logs."""

import pytest

from sip.errors import SipSyntaxError
from sip.headers import parse_via
from sip.message import parse_message


@pytest.mark.parametrize(
    "value, host, port",
    [
        (b"SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;rport", "10.0.0.5", 5060),
        (b"SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKx", "10.0.0.5", None),
        (b"SIP / 2.0 / tcp [2001:db8::9]:5070 ;branch=z9hG4bKx ", "2001:db8::9", 5070),
        (b"SIP/2.0/TLS [::ffff:10.0.0.1];branch=z9hG4bKx", "::ffff:10.0.0.1", None),
        (b"SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKx", "df7jal23ls0d.invalid", None),
        (b"SIP/2.0/UDP pbx_1.example.com.:65535", "pbx_1.example.com.", 65535),
    ],
)
def test_it_reads_a_sent_by(value, host, port):
    via = parse_via(value)
    assert (via.host, via.port) == (host, port)


@pytest.mark.parametrize(
    "port",
    [b"5" * 4301, b"5" * 6, b"000005060", b"0", b"65536", b"", b"\xb2", b"50x"],
)
def test_a_port_that_is_not_1_to_65535_is_a_syntax_error(port):
    with pytest.raises(SipSyntaxError, match="port must be 1-65535") as err:
        parse_via(b"SIP/2.0/UDP h:" + port + b";branch=z9hG4bKx")
    assert err.value.header == "Via"


def test_a_via_port_of_thousands_of_digits_is_a_syntax_error_of_the_message():
    msg = parse_message(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h:" + b"5" * 4301 + b"\r\n\r\n")
    with pytest.raises(SipSyntaxError) as err:
        msg.via
    assert err.value.header == "Via"


@pytest.mark.parametrize(
    "host",
    [b"1\x00", b"h\x01ost", b"h\x7f", b"h\xb2", b'"h"', b"h<x>", b"h%41", b"[::1%eth0]", b"[::1\x00]", b"[v1.x]"],
)
def test_a_host_with_a_byte_no_host_is_written_with_is_a_syntax_error(host):
    with pytest.raises(SipSyntaxError) as err:
        parse_via(b"SIP/2.0/UDP " + host + b":5060;branch=z9hG4bKx")
    assert err.value.header == "Via"


@pytest.mark.parametrize(
    "value, says",
    [
        (b"SIP/2.0/UDP [::1:5060", "not closed"),
        (b"SIP/2.0/UDP []:5060", "no sent-by host"),
        (b"SIP/2.0/UDP [::1]x", "after IPv6"),
        (b"SIP/2.0/UDP h junk", "junk after sent-by"),
        (b"SIP/3.0/UDP h", "not a Via value"),
    ],
)
def test_it_says_what_is_wrong(value, says):
    with pytest.raises(SipSyntaxError, match=says):
        parse_via(value)
