"""A caller hanging up while it rings: the CANCEL reaches the server and the caller gets 487."""

import pytest

pytestmark = pytest.mark.sipp

CALLS = 30


def test_cancel_reaches_the_server_and_the_caller_gets_487(cluster):
    uac = cluster.run_uac("uac_cancel.xml", calls=CALLS, rate=50, service="cancel")
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
    counts = cluster.stop_all_uas()
    assert sum(c.get("CANCEL_Recv", 0) for c in counts.values()) == CALLS, counts
    assert sum(c.get("487_Sent", 0) for c in counts.values()) == CALLS, counts
    # The 487 is ACKed hop by hop by the proxy, so every server sees its ACK.
    for n, c in counts.items():
        assert c.get("ACK_Recv", 0) == c.get("CANCEL_Recv", 0), f"ast{n}: {c}"
