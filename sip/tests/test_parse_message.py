import pytest

from sip.errors import SipSyntaxError
from sip.headers import canonical_name
from sip.message import parse_message
from sip.tests.fixtures import COMPACT, INVITE, RESPONSE


def test_it_reads_what_routing_needs_from_a_request():
    msg = parse_message(INVITE)
    msg.check()
    assert msg.method == b"INVITE"
    assert msg.uri == b"sip:service@127.0.0.1:5060"
    assert msg.via.transport == "UDP"
    assert (msg.via.host, msg.via.port) == ("127.0.0.1", 5061)
    assert msg.via.branch == b"z9hG4bK-1-1-0"
    assert msg.via.rport == b""
    assert msg.call_id == b"1-123@127.0.0.1"
    assert msg.cseq == (1, b"INVITE")
    assert msg.from_tag == b"abc"
    assert msg.to_tag is None
    assert msg.max_forwards == 70
    assert msg.uri_of(b"contact") == b"sip:sipp@127.0.0.1:5061"
    assert msg.body == b"v=0\n"


def test_it_reads_a_response():
    msg = parse_message(RESPONSE)
    assert msg.method is None
    assert (msg.code, msg.reason) == (180, b"Ringing")
    assert msg.via.branch == b"z9hG4bKproxy"
    assert msg.to_tag == b"uas1"
    assert msg.get_all(b"record-route") == [b"<sip:127.0.0.1:5060;lr>"]


def test_it_expands_compact_forms_and_comma_lists():
    msg = parse_message(COMPACT)
    msg.check()
    assert msg.call_id == b"compact@host"
    assert msg.via.transport == "TCP"
    assert msg.via.host == "2001:db8::9"
    assert msg.via.port == 5070
    vias = msg.get_all(b"via")
    assert len(vias) == 2 and vias[1].startswith(b"SIP/2.0/UDP 10.1.1.1")
    assert msg.to_tag == b"t1"
    assert msg.uri_of(b"contact") == b"sip:a@[2001:db8::9]:5070;transport=tcp"


def test_it_keeps_commas_inside_quotes_and_uris():
    raw = INVITE.replace(
        b"Contact: <sip:sipp@127.0.0.1:5061>",
        b'Contact: "Doe, John" <sip:a,b@h1>;q=1, <sip:c@h2>',
    )
    msg = parse_message(raw)
    assert msg.get_all(b"contact") == [b'"Doe, John" <sip:a,b@h1>;q=1', b"<sip:c@h2>"]
    assert parse_message(INVITE).from_tag == b"abc"  # quoted comma in From display name


def test_a_folded_line_that_looks_like_a_header_continues_the_one_before():
    """The fast path takes any cached spelling for a new header; " Via" (leading space) may be a
    valid name to canonical_name but must never be cached, or this line would become a second Via."""
    assert canonical_name(b" Via") == b"via"
    raw = INVITE.replace(b"Content-Length:", b"Subject: first\r\n Via: part of the subject\r\nContent-Length:")
    msg = parse_message(raw)
    assert msg.names.count(b"via") == INVITE.count(b"\r\nVia:")
    assert msg.get(b"subject").endswith(b"Via: part of the subject")


def test_it_joins_folded_header_lines():
    raw = INVITE.replace(b"Call-ID: 1-123@127.0.0.1\r\n", b"Call-ID:\r\n  folded-id\r\n")
    assert parse_message(raw).call_id == b"folded-id"


@pytest.mark.parametrize(
    "head",
    [
        b"Via: SIP/2.0/UDP h;: \r\n rport",  # the fuzzer's: trailing space before the fold
        b"Subject: a \t\r\n \r\n\t b  \r\n c",
        b"Subject:\r\n \r\n x",
    ],
)
def test_a_folded_header_is_forwarded_as_a_line_that_reads_the_same(head):
    msg = parse_message(b"OPTIONS sip:a SIP/2.0\r\n" + head + b"\r\n\r\n")
    again = parse_message(msg.to_bytes())
    assert (again.names, again.values) == (msg.names, msg.values)


def test_it_cuts_a_datagram_body_at_content_length():
    msg = parse_message(INVITE + b"trailing junk")
    assert msg.body == b"v=0\n"


@pytest.mark.parametrize(
    "mutate, header, says",
    [
        (lambda m: m.replace(b"Content-Length: 4", b"Content-Length: 400"), "Content-Length", "beyond the body"),
        (lambda m: m.replace(b"Content-Length: 4", b"Content-Length: four"), "Content-Length", "not a number"),
        (lambda m: m.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), "CSeq", "number METHOD"),
        (lambda m: m.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"), "CSeq", "differs"),
        (lambda m: m.replace(b"Call-ID: 1-123@127.0.0.1\r\n", b""), "Call-ID", "missing Call-ID"),
        (lambda m: m.replace(b"Via: SIP/2.0/UDP 127.0.0.1:5061", b"Via: SIP/3.0/UDP 127.0.0.1:5061"), "Via", "not a Via"),
        (lambda m: m.replace(b"Max-Forwards: 70", b"Max-Forwards: many"), "Max-Forwards", "0-255"),
        (lambda m: m.replace(b'From: "Agent, One"', b'From: "Agent, One'), "From", "quoted"),
    ],
)
def test_it_names_the_header_at_fault(mutate, header, says):
    with pytest.raises(SipSyntaxError) as err:
        parse_message(mutate(INVITE)).check()
    assert err.value.header == header
    assert says in err.value.reason


def test_it_says_at_which_byte_a_header_line_is_bad():
    raw = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70")
    with pytest.raises(SipSyntaxError) as err:
        parse_message(raw)
    assert err.value.offset == INVITE.index(b"Max-Forwards")
    assert "without a colon" in err.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",  # no blank line
        b"INVITE sip:a@b\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"SIP/2.0 099 Low\r\n\r\n",
        b"invite sip:a@b SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
    ],
)
def test_it_refuses_broken_framing(raw):
    with pytest.raises(SipSyntaxError):
        parse_message(raw).check()


def test_a_line_that_is_only_a_known_header_name_is_still_a_line_without_a_colon():
    """The fast path looks the part before ':' up in the names it has seen; a line "To" with no
    colon at all is that same part, and must not pass for a To header with an empty value."""
    parse_message(INVITE)  # "To" is in the cache now
    raw = INVITE.replace(b"Max-Forwards: 70", b"To")
    with pytest.raises(SipSyntaxError) as err:
        parse_message(raw)
    assert "without a colon" in err.value.reason
