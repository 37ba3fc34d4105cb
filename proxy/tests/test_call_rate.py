"""Calls per second per destination: the current rate over the last 10 s (`cps`) beside the
1-minute average (`cps_1m`), from INVITEs really dispatched over UDP. The rates' clock is
stepped by the test (Accounting.clock), so "0 within 10 s" takes no 10 s of sleeping."""

import asyncio
import time

from lbcore.contract import decode_node, node_key
from proxy.follower import Follower
from proxy.tests.harness import Harness, dest, run


class SteppedClock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


async def _calls(h, clock, first_second, seconds, per_second, uas_port):
    """`per_second` INVITEs in each of `seconds` seconds from `first_second`, each seen at the
    server and answered 486 (final: no dialog, no failover)."""
    for s in range(seconds):
        clock.now = first_second + s + 0.5
        for n in range(per_second):
            h.invite(b"rate-%d-%d" % (first_second + s, n))
            inv = await h.uas[uas_port].recv()
            h.uas[uas_port].answer(inv, 486, b"Busy Here")
            assert (await h.uac.recv()).code == 486
            assert (await h.uas[uas_port].recv()).method == b"ACK"  # the proxy's, for the 486


def _one(ports):
    return [dest(1, ports[0])], [ports[0]]


def _rates(h):
    _, dests = h.core.accounting.snapshot()
    return dests[1]["cps"], dests[1]["cps_1m"]


def test_the_current_rate_rises_with_calls_and_reads_0_within_10_s_of_the_last():
    async def scenario():
        async with Harness(_one) as h:
            clock = h.core.accounting.clock = SteppedClock(1000.0)
            await _calls(h, clock, 1000, 10, 3, h.dest_ports[0])
            clock.now = 1009.99  # ten seconds of 3 calls/s
            assert _rates(h) == (3.0, 0.5)
            clock.now = 1004.5 + 10  # five of the ten seconds now hold calls
            assert _rates(h) == (1.6, 0.5)  # 15 calls in 9.5 s; 30 in the minute
            clock.now = 1009.5 + 10  # 10 s after the last call
            cps, cps_1m = _rates(h)
            assert cps == 0.0 and cps_1m == 0.5  # the minute still remembers them
            clock.now = 1009.5 + 61
            assert _rates(h) == (0.0, 0.0)
            # Calls again after a quiet minute: counted from zero, not from a stale ring.
            await _calls(h, clock, 1100, 1, 4, h.dest_ports[0])
            clock.now = 1100.99
            assert _rates(h) == (0.4, 0.07)

    run(scenario())


def test_the_heartbeat_carries_both_rates(redis, redis_url):
    async def until_node(pred, what):
        end = time.monotonic() + 5
        while time.monotonic() < end:
            raw = redis.get(node_key("t-rate"))
            if raw is not None and pred(decode_node(raw)["destinations"].get(1)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the heartbeat never said {what}")

    async def scenario():
        async with Harness(_one) as h:
            clock = h.core.accounting.clock = SteppedClock(2000.0)
            follower = Follower(h.core, redis_url, "t-rate", ["udp:127.0.0.1:0"])
            beat = asyncio.get_running_loop().create_task(follower.heartbeat())
            try:
                await _calls(h, clock, 2000, 10, 2, h.dest_ports[0])
                clock.now = 2009.99
                await until_node(lambda d: d is not None and (d["cps"], d["cps_1m"]) == (2.0, 0.33), "cps 2.0")
                clock.now = 2019.5
                await until_node(lambda d: d["cps"] == 0.0 and d["cps_1m"] == 0.34, "cps 0 after the calls")
            finally:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)

    run(scenario())
