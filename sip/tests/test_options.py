"""sip/options.py: the probe request we send, and the replies we accept or refuse."""

import pytest

from sip.errors import SipSyntaxError
from sip.framing import StreamFramer
from sip.options import build_request, parse_reply


def request(**kw):
    args = dict(
        from_uri="sip:dispatcher@localhost",
        transport="udp",
        local_host="127.0.0.1",
        local_port=40000,
        branch="z9hG4bKabc",
        call_id="cid@lbpanel",
        from_tag="t1",
    )
    args.update(kw)
    return build_request("sip:ast1@127.0.0.1:5080", **args)


def test_it_builds_an_options_request():
    text = request().decode()
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "OPTIONS sip:ast1@127.0.0.1:5080 SIP/2.0"
    assert "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport" in lines
    assert "From: <sip:dispatcher@localhost>;tag=t1" in lines
    assert "To: <sip:ast1@127.0.0.1:5080>" in lines
    assert "Call-ID: cid@lbpanel" in lines
    assert "CSeq: 1 OPTIONS" in lines
    assert "Max-Forwards: 70" in lines
    assert "Content-Length: 0" in lines
    assert body == ""


def test_it_uses_the_configured_method_and_transport():
    text = request(method="info", transport="tcp", local_host="::1").decode()
    assert text.startswith("INFO sip:")
    assert "Via: SIP/2.0/TCP [::1]:40000;" in text
    assert "CSeq: 1 INFO" in text


def test_it_refuses_a_bad_method_or_transport():
    with pytest.raises(ValueError, match="method"):
        request(method="OPT IONS")
    with pytest.raises(ValueError, match="transport"):
        request(transport="sctp")


REPLY = (
    b"SIP/2.0 503 Service Unavailable\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000;received=127.0.0.1\r\n"
    b"From: <sip:dispatcher@localhost>;tag=t1\r\n"
    b"To: <sip:ast1@127.0.0.1:5080>;tag=x\r\n"
    b"Call-ID: cid@lbpanel\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_it_parses_a_reply():
    reply = parse_reply(REPLY)
    assert (reply.code, reply.reason, reply.status) == (503, "Service Unavailable", "503 Service Unavailable")
    assert (reply.branch, reply.call_id, reply.cseq, reply.cseq_method) == ("z9hG4bKabc", "cid@lbpanel", 1, "OPTIONS")
    assert reply.is_final


def test_it_reads_compact_and_folded_headers():
    raw = b"SIP/2.0 100 Trying\r\nv: SIP/2.0/UDP h;branch=z9hG4bKq, SIP/2.0/UDP other;branch=z9hG4bKr\r\ni:\r\n  abc@h\r\nCSeq: 2 OPTIONS\r\n\r\n"
    reply = parse_reply(raw)
    assert (reply.code, reply.branch, reply.call_id, reply.is_final) == (100, "z9hG4bKq", "abc@h", False)


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n", "status line"),
        (b"SIP/3.0 200 OK\r\n\r\n", "version"),
        (b"SIP/2.0 20 OK\r\n\r\n", "status line"),
        (b"SIP/2.0 700 Odd\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nCall-ID: x\r\n\r\n", "100-699"),
        (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\r\n", "Call-ID"),
        (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCall-ID: x\r\n\r\n", "Via"),
        (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nCall-ID: x\r\nCSeq: one OPTIONS\r\n\r\n", "CSeq"),
        (b"SIP/2.0 200 OK\r\nbroken header\r\n\r\n", "colon"),
    ],
)
def test_it_names_what_is_wrong_with_a_bad_reply(raw, words):
    with pytest.raises(SipSyntaxError, match=words):
        parse_reply(raw)


def test_a_reply_cut_from_a_tcp_stream_parses():
    body_reply = REPLY.replace(b"Content-Length: 0", b"Content-Length: 4") + b"abcd"
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + body_reply[:-1]) == []
    [data] = framer.feed(body_reply[-1:] + b"SIP/2.0")
    assert data == body_reply and parse_reply(data).code == 503
