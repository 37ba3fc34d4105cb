"""A retransmitted INVITE is absorbed by the proxy's server transaction: one call, not two.

The caller is a raw socket so the retransmission is exact (same bytes, same branch); the servers
are SIPp, which count every INVITE and every retransmission they receive.
"""

import pytest

from tests.e2e_proxy.rawsip import UdpPeer, hang_up, request

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

        assert hang_up(caller, invite, ok, proxy_port) is not None, "no 200 for the BYE\n" + cluster.report()

    cluster.proxy.wait_node(cluster.redis, lambda n: _active_total(n) == 0, "no active call after the BYE")
    counts = cluster.stop_all_uas()
    assert sum(c.get("INVITE_Recv", 0) for c in counts.values()) == 1, counts
    # The proxy answered the caller's retransmissions itself; the server saw none.
    assert sum(c.get("INVITE_Retrans", 0) for c in counts.values()) == 0, counts
    assert sum(c.get("BYE_Recv", 0) for c in counts.values()) == 1, counts
