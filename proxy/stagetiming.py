"""Where a message's time goes, for bench/ only: set LBPANEL_STAGE_TIMING=<file.json>.

When set, `install` wraps the proxy's stages (parse, the whole handling of a message, sends,
the periodic sweep, the heartbeat snapshot, the dialog flush), times each timer-wheel tick's
lateness (our event loop's lag) and every garbage collection (gc.callbacks), and `dump` writes
a histogram per stage. When unset nothing is wrapped: the hot path is the plain one.
"""

import bisect
import gc
import json
import os
import time

ENV = "LBPANEL_STAGE_TIMING"
STALL_S = 0.010  # a tick this late is a stall: say whether we ran or waited for a CPU
STALLS_KEPT = 200
# bucket upper bounds in microseconds; the last bucket is everything above
BOUNDS_US = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000)


class Histogram:
    __slots__ = ("counts", "n", "total", "max")

    def __init__(self):
        self.counts = [0] * (len(BOUNDS_US) + 1)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds):
        us = seconds * 1e6
        self.counts[bisect.bisect_left(BOUNDS_US, us)] += 1
        self.n += 1
        self.total += us
        if us > self.max:
            self.max = us

    def quantile(self, q):
        """Upper bound (µs) of the bucket holding the q-quantile; the max for the last bucket."""
        if not self.n:
            return None
        want, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= want:
                return BOUNDS_US[i] if i < len(BOUNDS_US) else self.max
        return self.max

    def as_dict(self):
        return {
            "n": self.n,
            "mean_us": round(self.total / self.n, 1) if self.n else None,
            "p50_us": self.quantile(0.5),
            "p99_us": self.quantile(0.99),
            "p999_us": self.quantile(0.999),
            "max_us": round(self.max, 1),
            "total_ms": round(self.total / 1000, 1),
            "buckets_us": dict(zip([*map(str, BOUNDS_US), "more"], self.counts)),
        }


class StageTiming:
    def __init__(self, path):
        self.path = path
        self.stages = {}
        self._gc_started = None
        self.started = time.monotonic()
        self.stalls = []  # since the tick before: at s, lag ms, ran ms, waited for a CPU ms, messages, ms in them
        self._sched = _schedstat()
        self._msgs = (0, 0.0)

    def tick(self, lag):
        """Each tick: a late one is kept with how much of the gap this process spent running
        (our own code, uninstrumented included) and how much runnable but not running."""
        now = _schedstat()
        msg = self.stages.get("message (parse+route+send)")
        totals = (msg.n, msg.total) if msg else (0, 0.0)
        if lag > STALL_S and now and self._sched and len(self.stalls) < STALLS_KEPT:
            ran, waited = (now[0] - self._sched[0]) / 1e6, (now[1] - self._sched[1]) / 1e6
            handled, in_handling = totals[0] - self._msgs[0], (totals[1] - self._msgs[1]) / 1000
            self.stalls.append(
                (
                    round(time.monotonic() - self.started, 3),
                    round(lag * 1000, 1),
                    round(ran, 1),
                    round(waited, 1),
                    handled,
                    round(in_handling, 1),
                )
            )
        self._sched = now
        self._msgs = totals

    def hist(self, name):
        h = self.stages.get(name)
        if h is None:
            h = self.stages[name] = Histogram()
        return h

    def timed(self, name, fn):
        h = self.hist(name)
        clock = time.perf_counter

        def wrapper(*args, **kwargs):
            t = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                h.add(clock() - t)

        return wrapper

    def timed_async(self, name, fn):
        h = self.hist(name)
        clock = time.perf_counter

        async def wrapper(*args, **kwargs):
            t = clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                h.add(clock() - t)

        return wrapper

    def _gc(self, phase, info):
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self.hist(f"gc gen{info.get('generation')}").add(time.perf_counter() - self._gc_started)
            self._gc_started = None

    def dump(self):
        doc = {
            "seconds": round(time.monotonic() - self.started, 1),
            "stages": {k: h.as_dict() for k, h in sorted(self.stages.items())},
            "stalls": [
                dict(zip(("at_s", "lag_ms", "ran_ms", "waited_ms", "messages", "in_messages_ms"), s)) for s in self.stalls
            ],
        }
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, self.path)


def _schedstat():
    """(ns on a CPU, ns runnable but waiting) of this thread, None where the kernel has no schedstat."""
    try:
        with open("/proc/thread-self/schedstat") as fh:
            ran, waited, _ = fh.read().split()
        return int(ran), int(waited)
    except (OSError, ValueError):
        return None


def install(core, dialogs=None, worker=None):
    """Wrap the stages of this proxy when LBPANEL_STAGE_TIMING names a file; None otherwise.
    Worker i of `--processes` writes <file>-<i>.json."""
    path = os.environ.get(ENV)
    if not path:
        return None
    if worker is not None:
        root, ext = os.path.splitext(path)
        path = f"{root}-{worker.index}{ext}"
    st = StageTiming(path)
    from proxy import core as core_module  # noqa: PLC0415 (only when timing is on)

    core_module.parse_message = st.timed("parse", core_module.parse_message)
    core.on_message = st.timed("message (parse+route+send)", core.on_message)
    core.send = st.timed("send to next hop", core.send)
    core.send_back = st.timed("send back upstream", core.send_back)
    core._sweep = st.timed("sweep (linger expiry, every 250 ms)", core._sweep)
    core.accounting.snapshot = st.timed("heartbeat snapshot", core.accounting.snapshot)
    if dialogs is not None:
        dialogs.flush = st.timed_async("dialog flush to redis (await)", dialogs.flush)
    wheel = core.wheel
    run_tick, lateness, tick = wheel._run, st.hist("timer tick lateness = loop lag"), st.hist("timer tick callbacks")
    clock = time.perf_counter

    def timed_tick():
        t = clock()
        run_tick()
        tick.add(clock() - t)
        lateness.add(max(0.0, wheel.lag))
        st.tick(wheel.lag)

    wheel._run = timed_tick
    gc.callbacks.append(st._gc)
    return st
