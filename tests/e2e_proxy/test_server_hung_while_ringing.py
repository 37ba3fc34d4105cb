"""A server that hangs (SIGSTOP) while it only holds ringing calls: no new INVITE goes to it, so
nothing but a question tells. The proxy asks it with an OPTIONS, gets no answer, and the calls
ring on elsewhere; before, they rang to fr_inv_timer and failed with 408."""

import os
import signal
import time

import pytest

from lbcore.contract import HEALTH_KEY, UP, Health, encode_health

pytestmark = [pytest.mark.sipp, pytest.mark.slow]

CALLS = 6
INVITE_OK = "4_200_Recv"


@pytest.mark.parametrize("processes", [1, 2])
def test_calls_ringing_on_a_server_that_hangs_ring_on_elsewhere(cluster_factory, processes):
    """With 2 processes each asks on its own, and the answer must reach the one that asked: the
    OPTIONS' Via names that worker's own port."""
    # fr_inv_timer 40 s: the calls would fail long after this test's SIPp gave up on them
    cluster = cluster_factory(scenarios={n: "uas_rings.xml" for n in (1, 2, 3)}, fr_inv_timer_ms=40000, start_proxy=False)
    # as the prober reports them (the list's flags are 0, as in the seed: pinged by probing mode 1)
    up = encode_health(Health(state=UP, rtt_ms=1.0, since=time.time()))
    cluster.redis.hset(HEALTH_KEY, mapping={str(d.id): up for d in cluster.dests.values()})
    if processes > 1:
        cluster.proxy_extra = ("--processes", str(processes))
    cluster.start_proxy()
    uac = cluster.uac(calls=CALLS, rate=CALLS, hold_ms=200, recv_timeout_ms=30000)
    hung = cluster.ast[2]
    stopped_at = None
    try:
        # every call placed and ringing, some on ast2, before it hangs: then no INVITE reaches it
        cluster.wait_uas(lambda c: sum(c[n].get("180_Sent", 0) for n in (1, 2, 3)) >= CALLS, "every call ringing")
        ringing_on_2 = hung.counts().get("180_Sent", 0)
        assert ringing_on_2 >= 1, "algorithm 4 gives ast2 some of the calls"
        os.kill(hung.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        uac.wait(60)
    finally:
        if stopped_at is not None:
            os.kill(hung.pid, signal.SIGCONT)
    took = time.monotonic() - stopped_at
    answered = uac.count(INVITE_OK)
    assert answered == CALLS, f"{CALLS - answered} of the calls ringing on ast2 failed\n" + cluster.report(uac)
    log = cluster.proxy.tail(100000)
    assert "OPTIONS unanswered" in log and "while ringing" in log, log[-3000:]
    # asked after 2 s of quiet, answered within 1 s, then 6 s ringing on another server
    assert took < 20, f"the moved calls took {took:.1f} s"
