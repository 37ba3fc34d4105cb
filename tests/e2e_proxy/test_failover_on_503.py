"""A server answering 503 (an overloaded Asterisk) costs no call: each one completes on another server."""

import pytest

pytestmark = pytest.mark.sipp

CALLS = 300


def test_every_call_completes_elsewhere(cluster_factory):
    cluster = cluster_factory(scenarios={2: "uas_503.xml"})
    uac = cluster.run_uac(calls=CALLS, rate=200, hold_ms=50)
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
    counts = cluster.stop_all_uas()
    # The 503 server was tried (so failover was exercised) and every answered call was torn down where it lived.
    assert counts[2].get("INVITE_Recv", 0) >= 1, counts
    assert counts[1]["BYE_Recv"] + counts[3]["BYE_Recv"] == CALLS, counts
    assert counts[2].get("ACK_Recv", 0) == counts[2].get("INVITE_Recv", 0), f"each 503 must be ACKed hop by hop: {counts[2]}"
