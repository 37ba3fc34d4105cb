"""A destination set to inactive (maintenance) takes no new calls; its calls in progress end normally.

Calls A (long hold) are spread over all three servers; then ast3 goes inactive through the real
service; calls B all land on ast1/ast2; finally the A calls on ast3 hang up and their BYEs still
reach it through the proxy.
"""

import pytest

pytestmark = pytest.mark.sipp

A_CALLS, B_CALLS = 60, 200


def test_inactive_takes_no_new_calls_but_ends_its_own(cluster):
    from dispatcher.services import set_state

    calls_a = cluster.uac(calls=A_CALLS, rate=60, hold_ms=6000)
    up = cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == A_CALLS, f"{A_CALLS} calls up")
    on_ast3 = up[3]["INVITE_Recv"]
    assert on_ast3 > 0, up

    set_state(cluster.dests[3], "inactive", reason="e2e maintenance")
    cluster.wait_table(int(cluster.redis.get("lb:table:version")))

    calls_b = cluster.run_uac(calls=B_CALLS, rate=200, hold_ms=50)
    assert calls_b.proc.returncode == 0, cluster.report(calls_b)
    calls_a.wait(30)
    assert calls_a.proc.returncode == 0, "calls in progress on the inactive server must end normally\n" + cluster.report(calls_a)

    counts = cluster.stop_all_uas()
    assert counts[3]["INVITE_Recv"] == on_ast3, f"ast3 got new calls while inactive: {counts}"
    assert counts[3]["BYE_Recv"] == on_ast3, f"BYEs of ast3's calls must still reach it: {counts}"
    assert counts[1]["INVITE_Recv"] + counts[2]["INVITE_Recv"] == A_CALLS - on_ast3 + B_CALLS, counts
