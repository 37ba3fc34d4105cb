"""A BYE sent after the proxy restarted mid-call still reaches the server that took the call.

In-dialog requests route from their Route headers alone (loose routing), so a proxy that lost
all its memory still sends each BYE to the right server.
"""

import pytest

pytestmark = pytest.mark.sipp

CALLS = 30


def test_bye_after_restart_reaches_the_right_server(cluster):
    uac = cluster.uac(calls=CALLS, rate=60, hold_ms=5000)
    up = cluster.wait_uas(lambda c: sum(x.get("ACK_Recv", 0) for x in c.values()) == CALLS, f"{CALLS} calls up")
    cluster.restart_proxy()
    uac.wait(30)
    assert uac.proc.returncode == 0, cluster.report(uac)
    assert int(uac.stats()["SuccessfulCall(C)"]) == CALLS, cluster.report(uac)
    counts = cluster.stop_all_uas()
    for n, c in counts.items():
        assert c["INVITE_Recv"] == up[n]["INVITE_Recv"], counts
        assert c.get("BYE_Recv", 0) == c["INVITE_Recv"], (
            f"ast{n} took {c['INVITE_Recv']} calls but got {c.get('BYE_Recv', 0)} BYEs: {counts}"
        )
