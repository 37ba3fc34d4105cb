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
    # the overload sample rides the wheel (50/s), the sweep runs 4 times a second
    per_second = _idle_rate(1.0)
    assert per_second <= 60, f"{per_second:.0f} timers a second on an idle proxy (was about 155)"
