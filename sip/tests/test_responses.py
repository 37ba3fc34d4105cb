import pytest

from sip.headers import parse_via
from sip.message import parse_message
from sip.responses import add_received, received_via, response_bytes
from sip.tests.fixtures import INVITE


def test_it_copies_the_transaction_headers_into_a_response():
    req = parse_message(INVITE)
    resp = parse_message(
        response_bytes(req, 503, b"Service Unavailable", to_tag=b"t9", extra=(b"Retry-After: 5",), server=b"lbpanel")
    )
    assert resp.code == 503
    assert resp.via.branch == req.via.branch
    assert resp.call_id == req.call_id
    assert resp.cseq == (1, b"INVITE")
    assert resp.to_tag == b"t9"
    assert resp.get(b"retry-after") == b"5"
    assert resp.get(b"server") == b"lbpanel"


def test_it_puts_no_to_tag_on_100():
    req = parse_message(INVITE)
    assert parse_message(response_bytes(req, 100, b"Trying", to_tag=b"t9")).to_tag is None


def test_it_fills_in_received_and_rport():
    via = parse_via(b"SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKx;rport")
    fixed = parse_via(add_received(via, "192.0.2.7", 40000))
    assert fixed.received == b"192.0.2.7"
    assert fixed.rport == b"40000"
    assert fixed.branch == b"z9hG4bKx"


def test_it_leaves_a_correct_via_alone():
    via = parse_via(b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx")
    assert add_received(via, "127.0.0.1", 5061) is None


@pytest.mark.parametrize(
    "value",
    [
        b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport",
        b"SIP/2.0/UDP 127.0.0.1:5070 ;branch=z9hG4bK2;received=1.2.3.4;rport=9",
        b"SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK3",
        b"SIP/2.0/UDP host.example;rport;branch=z9hG4bK4",
    ],
)
def test_the_received_via_is_what_parsing_its_value_gives(value):
    """The proxy keeps received_via's Via instead of parsing the new value again: they must agree."""
    fixed = received_via(parse_via(value), "192.0.2.7", 40000)
    again = parse_via(fixed.raw)
    assert (fixed.transport, fixed.host, fixed.port, fixed.params) == (again.transport, again.host, again.port, again.params)
    assert (fixed.branch, fixed.received, fixed.rport) == (again.branch, again.received, again.rport)
    assert fixed.received == b"192.0.2.7"
