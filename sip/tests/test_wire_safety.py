"""What we write into SIP never carries a header of someone else's: CR/LF/NUL are refused when encoding."""

import pytest

from sip.errors import SipSyntaxError, UnsafeHeaderValue
from sip.headers import is_token, server_val_error
from sip.message import parse_message
from sip.options import build_request
from sip.responses import response_bytes
from sip.tests.fixtures import INVITE
from sip.uri import parse_wire_uri

INJECTED = "\r\nContact: <sip:evil@203.0.113.9>\r\nP-Asserted-Identity: <sip:boss@example.com>"


def probe(target="sip:ast1@127.0.0.1:5080", **kw):
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
    return build_request(target, **args)


def test_a_response_refuses_a_server_header_with_crlf():
    req = parse_message(INVITE)
    for bad in (b"lbpanel" + INJECTED.encode(), b"lbpanel\nX: y", b"lb\x00panel", b"lbpanel\r"):
        with pytest.raises(UnsafeHeaderValue, match="Server"):
            response_bytes(req, 200, b"OK", to_tag=b"t", server=bad)


def test_a_response_keeps_a_good_server_header():
    req = parse_message(INVITE)
    resp = parse_message(response_bytes(req, 200, b"OK", to_tag=b"t", server=b"lbpanel/1.2 (VICIdial\tLB)"))
    assert resp.get(b"server") == b"lbpanel/1.2 (VICIdial\tLB)"


@pytest.mark.parametrize(
    "field, value",
    [
        ("from_uri", "sip:dispatcher@localhost" + INJECTED),
        ("from_uri", "sip:dispatcher@localhost>;x=<sip:a"),
        ("user_agent", "lbpanel" + INJECTED),
        ("call_id", "cid\r\nX: y"),
        ("local_host", "127.0.0.1\nX: y"),
    ],
)
def test_a_probe_refuses_crlf_in_every_header_it_writes(field, value):
    with pytest.raises(UnsafeHeaderValue):
        probe(**{field: value})


@pytest.mark.parametrize(
    "target",
    [
        "sip:127.0.0.1:5080;x=1" + INJECTED,
        "sip:127.0.0.1:5080 SIP/2.0\r\nX: y",
        "sip:127.0.0.1:5080?Contact=sip:evil",
        "sip:127.0.0.1:5080;x=\x00",
    ],
)
def test_a_probe_refuses_a_target_uri_that_is_not_only_a_uri(target):
    with pytest.raises(UnsafeHeaderValue, match="request URI"):
        probe(target)


@pytest.mark.parametrize("method", ["<i>PM</i>", "OPTIONS\r\nX: y", "OPT IONS", "", "ÉTAT"])
def test_a_probe_refuses_a_method_that_is_not_a_token(method):
    with pytest.raises(ValueError, match="method"):
        probe(method=method)


def test_a_probe_takes_any_token_method():
    assert probe(method="x-ping.1").startswith(b"X-PING.1 sip:ast1@127.0.0.1:5080 SIP/2.0\r\n")


def test_tokens():
    assert is_token("OPTIONS") and is_token("INFO") and is_token("x-ping.1")
    assert not any(is_token(t) for t in ("", "<i>PM</i>", "A B", "A\r\n", "A:B", None))


@pytest.mark.parametrize(
    "value", ["lbpanel", "lbpanel/1.2", "Asterisk PBX 18.9.0", "lbpanel (VICIdial LB (site 2))", "lb (a \\) b)", "lbpanel(x)"]
)
def test_server_values_rfc3261_accepts(value):
    assert server_val_error(value) is None


@pytest.mark.parametrize(
    "value", ["", "  ", "lbpanel" + INJECTED, "lbpanel\n", "lb\x00", "lb/", "lbpanel; evil", "(open", "<b>x</b>", "lb (a\r\nb)"]
)
def test_server_values_rfc3261_refuses(value):
    assert server_val_error(value) is not None


@pytest.mark.parametrize(
    "uri", ["sip:127.0.0.1:5080", "sip:ast1@[::1]:5080;transport=tcp", "sips:ast1.example.com", "sip:%41b@h"]
)
def test_wire_uris_accept(uri):
    assert parse_wire_uri(uri).host


@pytest.mark.parametrize(
    "uri", [" sip:127.0.0.1", "<sip:127.0.0.1>", "sip:127.0.0.1\r\nX: y", "sip:127.0.0.1\tx", 'sip:"a"@h', "sip:h?X=y", "sip:é@h"]
)
def test_wire_uris_refuse(uri):
    with pytest.raises(SipSyntaxError):
        parse_wire_uri(uri)
