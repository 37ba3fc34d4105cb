"""An idle proxy's own timers: how often it wakes when no call is up.

An idle worker used 2.8 % of a core waking about 200 times a second with nothing to do: the
wheel's 10 ms tick and the overload sampler's own 20 ms timer. Counted, not timed: a busy host
makes fewer wake-ups, never more.
"""

import asyncio

import uvloop

from proxy.tests.harness import Harness, dest


class CountingLoop(uvloop.Loop):
    """Counts the loop timers armed from Python: each is a wake-up of its own."""

    armed = 0

    def call_later(self, delay, callback, *args, context=None):
        self.armed += 1
        return super().call_later(delay, callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):
        self.armed += 1
        return super().call_at(when, callback, *args, context=context)


def _idle_rate(seconds):
    async def scenario():
        loop = asyncio.get_running_loop()
        async with Harness(lambda ports: ([dest(1, ports[0])], [ports[0]])):
            await asyncio.sleep(0.3)  # past start-up
            before, started = loop.armed, loop.time()
            await asyncio.sleep(seconds)
            return (loop.armed - before) / (loop.time() - started)

    with asyncio.Runner(loop_factory=CountingLoop) as runner:
        return runner.run(scenario())


def test_an_idle_proxy_wakes_for_the_overload_sample_and_the_sweep_only():
    # with no transaction live the overload sample rides the wheel 5 times a second (it was 50),
    # the sweep 4 times
    per_second = _idle_rate(1.0)
    assert per_second <= 15, f"{per_second:.0f} timers a second on an idle proxy (was about 155, then 55)"


def test_with_a_transaction_live_the_overload_sample_is_taken_every_twenty_milliseconds():
    """Shedding must see a flood as soon as it has a transaction to show for it."""

    async def scenario():
        async with Harness(lambda ports: ([dest(1, ports[0])], [ports[0]])) as h:
            guard = h.core.overload
            samples = []
            real = guard._sample

            def counting():
                samples.append(h.core.loop.time())
                real()

            guard._sample = counting
            await asyncio.sleep(1.0)
            idle = len(samples)
            h.invite(b"keeps-it-busy")  # the server never answers: the transaction lives on
            await h.uas[h.dest_ports[0]].recv()
            start = len(samples)
            await asyncio.sleep(1.0)
            return idle, len(samples) - start

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        idle, busy = runner.run(scenario())
    assert idle <= 7, f"{idle} samples in an idle second"
    # 20 ms on the wheel's 10 ms slots is 20-30 ms: about 33 a second
    assert busy >= 25, f"only {busy} samples in a second with a transaction live"
