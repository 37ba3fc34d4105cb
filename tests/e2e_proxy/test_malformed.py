"""Malformed messages get 400 or are dropped, and the proxy keeps serving calls."""

import os
import socket

import pytest

from tests.e2e_proxy.rawsip import UdpPeer, request

pytestmark = pytest.mark.sipp


def _invite(port, lport, **kwargs):
    return request("INVITE", f"sip:lbtest@127.0.0.1:{port}", lport, port, body="v=0\r\n", **kwargs)


def _bad_via(port, lport):
    return _invite(port, lport).replace(f"Via: SIP/2.0/UDP 127.0.0.1:{lport};", "Via: SIP/2.0/UDP ;;;@@;")


def _no_call_id(port, lport):
    return "\r\n".join(line for line in _invite(port, lport).split("\r\n") if not line.startswith("Call-ID:"))


def _content_length_beyond_body(port, lport):
    return _invite(port, lport).replace("Content-Length: 5\r\n", "Content-Length: 500\r\n")


# kind -> (message, what must come back): a 400 whose reason contains the words, when the
# request line and Via survive (the proxy knows where to answer), else nothing at all.
MALFORMED = {
    "bad Via": (_bad_via, None),
    "missing Call-ID": (_no_call_id, "call-id"),
    "Content-Length beyond the body": (_content_length_beyond_body, "content-length"),
    "binary junk": (lambda port, lport: os.urandom(700), None),
    "junk with a request line": (lambda port, lport: "INVITE \x00\xff\r\n\r\n", None),
    "header without colon": (lambda port, lport: _invite(port, lport).replace("Max-Forwards: 70", "Max-Forwards 70"), "colon"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_it_answers_400_or_drops_malformed_udp(cluster, kind):
    port = cluster.ports.proxy
    build, words = MALFORMED[kind]
    with UdpPeer() as peer:
        data = build(port, peer.port)
        peer.send(data if isinstance(data, bytes) else data.encode("latin-1"), port)
        reply = peer.wait_response(lambda r: True, 0.5)
        if words is None:
            assert reply is None, f"{kind}: got {reply.code} {reply.reason}, want nothing"
        else:
            assert reply is not None, f"{kind}: no answer, want 400 naming {words!r}"
            assert reply.code == 400 and words in reply.reason.lower(), f"{kind}: got {reply.code} {reply.reason}"
        assert cluster.proxy.alive(), f"the proxy died on {kind}:\n{cluster.proxy.tail()}"
        answer = peer.options(port)
        assert answer is not None and answer.code == 200, f"the proxy stopped serving after {kind}:\n{cluster.proxy.tail()}"
    uac = cluster.run_uac(calls=10, rate=50, hold_ms=50)
    assert uac.proc.returncode == 0, cluster.report(uac)


def test_it_answers_400_with_a_reason_for_a_missing_call_id(cluster):
    """A message whose Via is fine can be answered: the 400's reason names what is wrong."""
    port = cluster.ports.proxy
    with UdpPeer() as peer:
        peer.send(_no_call_id(port, peer.port).encode(), port)
        reply = peer.wait_response(lambda r: True, 0.5)
    assert reply is not None, "no answer to a request with a good Via and no Call-ID"
    assert reply.code == 400 and "call-id" in reply.reason.lower(), f"{reply.code} {reply.reason}"


def test_tcp_junk_costs_only_its_own_connection(cluster):
    port = cluster.ports.proxy
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(os.urandom(4000) + b"\r\n\r\n")
        conn.settimeout(1.0)
        try:
            data = conn.recv(65535)
        except (TimeoutError, ConnectionResetError):
            data = b""
        assert data == b"" or data.startswith(b"SIP/2.0 400"), data[:200]
    uac = cluster.run_uac(calls=10, rate=50, hold_ms=50, transport="tcp")
    assert uac.proc.returncode == 0, cluster.report(uac)
