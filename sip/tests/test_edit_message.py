import pytest

from sip.message import parse_message
from sip.tests.fixtures import COMPACT, INVITE, RESPONSE


def test_it_serializes_an_untouched_message_byte_for_byte():
    for raw in (INVITE, COMPACT, RESPONSE):
        assert parse_message(raw).to_bytes() == raw


@pytest.mark.parametrize(
    "data", [b"OPTIONS sip:a SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\nbody", b"BYE sip:b SIP/2.0\r\n\r\n\r\n"]
)
def test_a_message_without_header_lines_serializes_byte_for_byte(data):
    msg = parse_message(data)
    assert msg.to_bytes() == data  # an extra CRLF used to turn into body
    assert parse_message(msg.to_bytes()).body == msg.body
    assert msg.start_line() + b"\r\n" + msg.head_bytes() + msg.body == data


def test_it_prepends_a_via_and_decrements_max_forwards():
    msg = parse_message(INVITE)
    msg.prepend(b"via", b"Via", b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp1")
    assert msg.decrement_max_forwards() == 69
    out = parse_message(msg.to_bytes())
    assert out.via.branch == b"z9hG4bKp1"
    assert len(out.get_all(b"via")) == 2
    assert out.max_forwards == 69
    assert out.body == b"v=0\n"


def test_it_adds_max_forwards_when_missing():
    msg = parse_message(INVITE.replace(b"Max-Forwards: 70\r\n", b""))
    assert msg.decrement_max_forwards(10) == 10
    assert parse_message(msg.to_bytes()).max_forwards == 10


def test_it_pops_the_top_via_from_a_comma_list():
    msg = parse_message(COMPACT)
    top = msg.pop_first(b"via")
    assert top.startswith(b"SIP/2.0/TCP")
    assert msg.via.host == "10.1.1.1"
    assert parse_message(msg.to_bytes()).get_all(b"via") == [b"SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKbb"]


def test_it_pops_the_top_via_line():
    msg = parse_message(RESPONSE)
    msg.pop_first(b"via")
    out = parse_message(msg.to_bytes())
    assert out.via.branch == b"z9hG4bK-1-1-0"
    assert b"z9hG4bKproxy" not in msg.to_bytes()


def test_it_pops_routes_one_at_a_time():
    raw = INVITE.replace(
        b"Max-Forwards: 70\r\n", b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\nMax-Forwards: 70\r\n"
    )
    msg = parse_message(raw)
    assert msg.pop_first(b"route") == b"<sip:p1;lr>"
    assert msg.pop_first(b"route") == b"<sip:p2;lr>"
    assert msg.get_all(b"route") == [b"<sip:p3;lr>"]
    assert msg.pop_first(b"route") == b"<sip:p3;lr>"
    assert msg.pop_first(b"route") is None
