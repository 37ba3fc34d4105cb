import asyncio

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

    import uvloop

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
