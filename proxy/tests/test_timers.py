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
