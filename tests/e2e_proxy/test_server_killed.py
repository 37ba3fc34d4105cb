"""A server that dies mid-run: new calls go to the others at once; only calls already up on it may fail.

ast2 is SIGKILLed while calls run. The caller gives every INVITE 2 s to be answered (well under
fr_timer's 5 s), so a proxy that kept sending new calls to the dead server, or waited for fr_timer
before failing over, shows up as calls that never got their 200.
"""

import pytest

pytestmark = pytest.mark.sipp

CALLS, RATE, HOLD_MS = 600, 150, 1000
# uac.xml scenario lines: 4 is the 200 for the INVITE, 8 the 200 for the BYE.
INVITE_OK, BYE_OK = "4_200_Recv", "8_200_Recv"


def test_only_calls_up_on_the_dead_server_fail(cluster):
    uac = cluster.uac(calls=CALLS, rate=RATE, hold_ms=HOLD_MS, recv_timeout_ms=2000)
    before = cluster.wait_uas(lambda c: c[2].get("ACK_Recv", 0) >= 40, "40 calls up on ast2")
    cluster.ast[2].kill()
    uac.wait(60)

    answered, ended = uac.count(INVITE_OK), uac.count(BYE_OK)
    failed = int(uac.stats()["FailedCall(C)"])
    assert answered == CALLS, f"{CALLS - answered} calls never got a 200 after ast2 died\n" + cluster.report(uac)
    # So the calls that failed were up when ast2 died: their BYE found it gone.
    assert failed == CALLS - ended, f"failed={failed} answered={answered} ended={ended}\n" + cluster.report(uac)
    # At most ast2's 30% share of RATE x (hold + setup) can have been up on it, with slack.
    bound = int(0.3 * RATE * (HOLD_MS / 1000 + 0.5) * 1.5)
    assert failed <= bound, (
        f"{failed} calls failed, more than could have been up on ast2 ({bound}); ast2 before the kill: {before[2]}"
    )
    survivors = cluster.stop_all_uas()
    for n in (1, 3):
        assert survivors[n]["BYE_Recv"] == survivors[n]["INVITE_Recv"], survivors
