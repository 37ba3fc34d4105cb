import asyncio

import uvloop

from proxy.timers import ExpiryQueue, TimerWheel


def test_it_fires_timers_in_order_and_skips_cancelled():
    async def run():
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop, tick=0.005)
        wheel.start()
        fired = []
        done = asyncio.Event()
        wheel.call_later(0.03, lambda arg, late: fired.append(arg), "b")
        wheel.call_later(0.01, lambda arg, late: fired.append(arg), "a")
        wheel.call_later(0.02, lambda arg, late: fired.append(arg), "x").cancel()
        wheel.call_later(0.05, lambda arg, late: done.set(), None)
        await asyncio.wait_for(done.wait(), 2)
        wheel.stop()
        return fired

    assert asyncio.run(run()) == ["a", "b"]


def test_it_tells_a_callback_how_late_it_runs():
    async def run():
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop, tick=0.005)
        wheel.start()
        got = asyncio.get_running_loop().create_future()
        wheel.call_later(0.01, lambda arg, late: got.set_result(late), None)
        import time

        time.sleep(0.1)  # block the loop on purpose: the timer must report the lag
        late = await asyncio.wait_for(got, 2)
        wheel.stop()
        return late

    assert asyncio.run(run()) > 0.05


def test_it_expires_in_fifo_order():
    q = ExpiryQueue(10)
    q.add(0, "a")
    q.add(1, "b")
    assert list(q.expire(10)) == ["a"]
    assert list(q.expire(20)) == ["b"]
    assert len(q) == 0


def test_on_uvloop_it_wakes_once_a_tick_not_in_a_spin():
    # uvloop counts in whole milliseconds and rounds a delay to the nearest one, so the wheel woke
    # up to 0.5 ms before its tick, found nothing due and asked for the rest of it, which rounds
    # to 0: "at once", again and again until the millisecond turned. An idle proxy polled about
    # 900 times a second that way. Counted, not timed: a busy host makes fewer wake-ups, never more.
    import time

    async def run():
        loop = asyncio.get_running_loop()
        wheel = TimerWheel(loop, tick=0.01)
        runs = 0
        inner = wheel._run

        def counted():
            nonlocal runs
            runs += 1
            inner()

        wheel._run = counted
        wheel.start()
        wheel.call_later(0.05, lambda arg, late: None, None)
        started = time.monotonic()
        await asyncio.sleep(0.6)
        elapsed = time.monotonic() - started
        wheel.stop()
        return runs, elapsed / wheel.tick

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runs, ticks = runner.run(run())
    assert runs <= ticks * 1.5 + 2, f"{runs} wake-ups for {ticks:.0f} ticks"


def _counting_wheel(tick=0.01):
    """A wheel on a uvloop loop whose wake-ups (runs of _run) are counted in runs[0]."""
    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop, tick=tick)
    runs = [0]
    inner = wheel._run

    def counted():
        runs[0] += 1
        inner()

    wheel._run = counted
    return wheel, runs


def test_an_idle_wheel_sleeps_until_its_next_timer():
    # An idle proxy's wheel woke every 10 ms to find nothing due: a third of its idle CPU.
    # Counted, not timed: a busy host makes fewer wake-ups, never more.
    async def run():
        wheel, runs = _counting_wheel()
        wheel.start()
        await asyncio.sleep(0.2)
        idle = runs[0]
        fired = asyncio.Event()
        wheel.call_later(0.3, lambda arg, late: fired.set(), None)
        await asyncio.wait_for(fired.wait(), 2)
        wheel.stop()
        return idle, runs[0]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        idle, total = runner.run(run())
    assert idle == 0
    assert total == 1, f"{total} wake-ups for one timer"


def test_a_timer_sooner_than_the_armed_one_is_not_late():
    async def run():
        loop = asyncio.get_running_loop()
        wheel, runs = _counting_wheel()
        wheel.start()
        order = []
        done = asyncio.Event()
        wheel.call_later(1.0, lambda arg, late: (order.append(arg), done.set()), "far")
        wheel.call_later(0.02, lambda arg, late: order.append((arg, late)), "near")
        started = loop.time()
        await asyncio.wait_for(done.wait(), 3)
        wheel.stop()
        return order, loop.time() - started

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        order, _ = runner.run(run())
    assert [o if isinstance(o, str) else o[0] for o in order] == ["near", "far"]
    near_late = order[0][1]
    assert near_late < 0.5, f"the near timer ran {near_late:.3f} s late: it waited for the far one"


def test_a_callback_can_arm_the_next_timer_of_a_chain():
    # retransmissions re-arm themselves from inside the tick
    async def run():
        wheel, runs = _counting_wheel(tick=0.005)
        wheel.start()
        fired = []
        done = asyncio.Event()

        def again(n, late):
            fired.append(n)
            if n < 5:
                wheel.call_later(0.01, again, n + 1)
            else:
                done.set()

        wheel.call_later(0.01, again, 1)
        await asyncio.wait_for(done.wait(), 2)
        wheel.stop()
        return fired, runs[0]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        fired, wakes = runner.run(run())
    assert fired == [1, 2, 3, 4, 5]
    assert wakes <= 10
