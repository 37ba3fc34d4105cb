"""A proxy's load figure (proxy/load.py): its share of one core and its worst delay over 10 s, in its
heartbeat, so the panel can say it nears its limit before it sheds."""

import asyncio
import time

from lbcore.contract import decode_node, node_key, node_load
from proxy.load import WINDOW_S, LoadMeter
from proxy.overload import OverloadGuard
from proxy.tests.harness import run
from proxy.tests.test_node_heartbeat import _beating
from proxy.tests.test_table_follower import _until


class Clocks:
    def __init__(self):
        self.now = 100.0
        self.cpu = 5.0

    def advance(self, seconds, busy):
        self.now += seconds
        self.cpu += seconds * busy


def _meter():
    clocks = Clocks()
    return clocks, LoadMeter(cpu_clock=lambda: clocks.cpu, clock=lambda: clocks.now)


def test_nothing_is_said_until_a_second_has_passed():
    clocks, meter = _meter()
    assert meter.sample(0.0) is None
    clocks.advance(0.5, 1.0)
    assert meter.sample(0.0) is None
    clocks.advance(0.6, 1.0)
    assert meter.sample(0.0) == {"cpu": 1.0, "delay_ms": 0.0, "window_s": 1.1}


def test_it_is_the_share_of_one_core_over_the_last_ten_seconds():
    clocks, meter = _meter()
    meter.sample(0.0)
    for _ in range(10):
        clocks.advance(1.0, 0.9)
        meter.sample(0.002)
    assert meter.sample(0.0)["cpu"] == 0.9
    for _ in range(int(WINDOW_S)):  # a quiet spell replaces the busy one, second by second
        clocks.advance(1.0, 0.1)
        figures = meter.sample(0.0)
    assert figures["cpu"] == 0.1
    assert figures["window_s"] == WINDOW_S
    assert len(meter.samples) <= WINDOW_S + 2  # bounded, however long it runs


def test_the_worst_delay_of_the_window_is_kept_then_ages_out():
    clocks, meter = _meter()
    meter.sample(0.0)
    clocks.advance(1.0, 0.2)
    assert meter.sample(0.250)["delay_ms"] == 250.0
    for _ in range(5):
        clocks.advance(1.0, 0.2)
        assert meter.sample(0.001)["delay_ms"] == 250.0
    for _ in range(int(WINDOW_S)):
        clocks.advance(1.0, 0.2)
        figures = meter.sample(0.001)
    assert figures["delay_ms"] == 1.0


def test_the_guard_hands_the_heartbeat_its_worst_signal_since_the_last_read():
    async def scenario():
        from proxy.timers import TimerWheel

        guard = OverloadGuard(TimerWheel(asyncio.get_running_loop()), time.time)
        for injected in (0.004, 0.030, 0.002):
            guard.injected = injected
            guard._sample()
        assert guard.take_worst() == 0.030
        assert guard.take_worst() == 0.0  # read once

    run(scenario())


def test_another_processs_cpu_time_is_read_from_proc_whatever_its_name():
    # the reader under --steering reader is read this way; a process may name itself anything,
    # ")" and spaces included, and /proc/<pid>/stat puts that name before the figures
    import subprocess
    import sys

    from proxy.load import process_cpu_seconds

    burn = (
        "import time, sys\n"
        "open('/proc/self/comm', 'w').write('r) 1 2 (x')\n"
        "end = time.process_time() + 0.4\n"
        "while time.process_time() < end: pass\n"
        "print('burnt', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "burnt\n"
        assert open(f"/proc/{child.pid}/comm").read().strip() == "r) 1 2 (x"
        used = process_cpu_seconds(child.pid)
        assert used is not None and 0.35 <= used < 5, used
    finally:
        child.stdin.close()
        child.wait(10)
    assert process_cpu_seconds(child.pid) is None  # gone (reaped): unknown, not zero


def test_a_meter_whose_clock_cannot_be_read_says_nothing_rather_than_span_the_gap():
    clocks = Clocks()
    readable = [True]
    meter = LoadMeter(cpu_clock=lambda: clocks.cpu if readable[0] else None, clock=lambda: clocks.now)
    for _ in range(3):
        meter.sample(0.0)
        clocks.advance(1.0, 0.5)
    assert meter.sample(0.0)["cpu"] == 0.5
    readable[0] = False
    clocks.advance(1.0, 0.5)
    assert meter.sample(0.0) is None
    readable[0] = True
    clocks.advance(1.0, 0.9)
    assert meter.sample(0.0) is None  # a fresh start: one reading is no figure
    clocks.advance(1.0, 0.9)
    assert meter.sample(0.0)["cpu"] == 0.9


def test_a_proxy_that_held_its_loop_says_so_in_its_heartbeat(redis, redis_url):
    """Real heartbeats to real Redis: an idle proxy reports a small share, one whose loop was busy
    for 1.5 s reports most of a core and a delay of about that long."""

    def load_of(name):
        raw = redis.get(node_key(name))
        return node_load(decode_node(raw)) if raw is not None else None

    async def scenario():
        core, tasks = _beating(redis_url, "t-load")
        core.wheel.start()  # the guard samples on the wheel, as Proxy.start() runs them
        core.overload.start()
        try:
            await _until(lambda: load_of("t-load") is not None, "a load figure", 6)
            idle = load_of("t-load")
            assert idle["cpu"] < 0.5, idle
            deadline = time.process_time() + 1.5
            while time.process_time() < deadline:  # the loop held, as a flood or a long GC would
                pass
            await _until(lambda: load_of("t-load")["delay_ms"] >= 1000, "the held loop in the heartbeat", 6)
            busy = load_of("t-load")
            assert busy["cpu"] > idle["cpu"] and busy["cpu"] >= 0.12, busy  # 1.5 s of CPU in a 10 s window
        finally:
            core.overload.stop()
            core.wheel.stop()
            for t in tasks:
                t.cancel()

    run(scenario())
