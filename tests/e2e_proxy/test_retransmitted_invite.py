"""A retransmitted INVITE is absorbed by the proxy's server transaction: one call, not two.

The caller is a raw socket so the retransmission is exact (same bytes, same branch); the servers
are SIPp, which count every INVITE and every retransmission they receive.
"""

import pytest

from tests.e2e_proxy.rawsip import UdpPeer, request

pytestmark = pytest.mark.sipp


def _active_total(node):
    return sum(d.get("active", 0) for d in node.get("destinations", {}).values())


def test_a_retransmitted_invite_is_not_a_second_call(cluster):
    proxy_port = cluster.ports.proxy
    with UdpPeer() as caller:
        invite = request("INVITE", f"sip:lbtest@127.0.0.1:{proxy_port}", caller.port, proxy_port).encode()
        caller.send(invite, proxy_port)
        assert caller.wait_response(lambda r: r.code == 100, 2.0) is not None, cluster.report()
        # Timer A fired at the caller: the same INVITE again, while the server is handling it.
        caller.send(invite, proxy_port)
        ok = caller.wait_response(lambda r: r.code == 200, 3.0)
        assert ok is not None, "no 200 OK for the INVITE\n" + cluster.report()
        caller.send(invite, proxy_port)  # and once more after the answer, before the ACK

        node = cluster.proxy.wait_node(cluster.redis, lambda n: _active_total(n) >= 1, "the call active")
        # Hold the ACK back past SIPp's 500 ms 200-retransmit: a retransmitted 2xx is not a new call either.
        caller.wait_response(lambda r: False, 1.2)
        node = cluster.proxy.node(cluster.redis)
        assert _active_total(node) == 1, f"one call, counted once: {node}"
        assert node["totals"]["invites"] == 1, node

        routes = ", ".join(reversed(ok.headers.get("record-route", [])))
        contact = ok.header("contact").strip("<>").split(">")[0]
        to = ok.header("to")
        dialog = dict(call_id=_call_id(invite), from_tag="rawtag")
        ack = request("ACK", contact, caller.port, proxy_port, cseq=1, extra=f"Route: {routes}\r\n", **dialog)
        caller.send(_with_to(ack, to).encode(), proxy_port)
        bye = request("BYE", contact, caller.port, proxy_port, cseq=2, extra=f"Route: {routes}\r\n", **dialog)
        caller.send(_with_to(bye, to).encode(), proxy_port)
        assert caller.wait_response(lambda r: r.code == 200 and "BYE" in (r.header("cseq") or ""), 3.0) is not None

    cluster.proxy.wait_node(cluster.redis, lambda n: _active_total(n) == 0, "no active call after the BYE")
    counts = cluster.stop_all_uas()
    assert sum(c.get("INVITE_Recv", 0) for c in counts.values()) == 1, counts
    # The proxy answered the caller's retransmissions itself; the server saw none.
    assert sum(c.get("INVITE_Retrans", 0) for c in counts.values()) == 0, counts
    assert sum(c.get("BYE_Recv", 0) for c in counts.values()) == 1, counts


def _call_id(invite):
    for line in invite.decode().split("\r\n"):
        if line.startswith("Call-ID:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no Call-ID in our own INVITE")


def _with_to(message, to):
    lines = message.split("\r\n")
    return "\r\n".join(f"To: {to}" if line.startswith("To:") else line for line in lines)
