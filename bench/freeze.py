"""Host freezes: spells when nothing on this machine ran, not even a real-time task.

A virtual machine's host can stop both vCPUs for a moment (seen here: 2.4 s in one 10 s step).
Every process freezes; datagrams in flight wait, the SIPp client catches up in a burst, and the
step's p99 measures the host, not the proxy. This machine's /proc/stat reports no steal time for
it. So a watcher process at SCHED_FIFO priority (ahead of every normal process, the burners
included) sleeps 2 ms at a time and records every wake-up more than FREEZE_MS late. Without root
it runs at normal priority and then also counts CPU starvation: the column says which.
"""

import subprocess
import sys

FREEZE_MS = 30

WATCH = f"""
import os, signal, sys, time
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    rt = "rt"
except OSError:
    rt = "normal"
gaps = []
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
last = time.monotonic()
while not stop:
    time.sleep(0.002)
    now = time.monotonic()
    if now - last > {FREEZE_MS} / 1000:
        gaps.append(now - last)
    last = now
print(rt, len(gaps), round(sum(gaps) * 1000), round(max(gaps, default=0) * 1000), flush=True)
"""


class FreezeWatch:
    def __init__(self):
        self.proc = None
        self.result = None  # (priority, count, total ms, longest ms)

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-c", WATCH], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)

    def stop(self):
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=5)
            rt, count, total, longest = out.split()
            self.result = (rt, int(count), int(total), int(longest))
        except (subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.result = None
        self.proc = None
        return self.result

    def describe(self):
        if self.result is None:
            return "?"
        rt, count, total, longest = self.result
        text = "-" if not count else f"{count}: {total} ms, longest {longest}"
        return text if rt == "rt" else f"{text} (not real-time)"
