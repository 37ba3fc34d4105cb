"""How busy this proxy process is, for its heartbeat: its share of one CPU core and its worst delay
over the last WINDOW_S.

One proxy process runs its event loop on one core. Near 100 % of that core it has no headroom
left: the loop falls behind, the overload guard sees the delay and sheds new calls with 503. The
panel shows this figure so ops add a process (LBPANEL_PROXY_PROCESSES) or a node before that
point, not after the first 503s. CPU time is the whole process's (the resolver's threads too);
the delay is the overload guard's own signal (proxy/overload.py): loop lag or the age of the
oldest datagram waiting, whichever is worse. Read once a heartbeat, nothing on the message path.

Under `--processes --steering reader` every datagram from callers passes through one more process
first, the reader (proxy.sharding), which has no heartbeat of its own: each worker reports its
share of a core too (`reader_cpu`, from /proc), since at its limit every worker's calls wait.
"""

import collections
import os
import time

WINDOW_S = 10.0
_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of /proc/<pid>/stat's CPU times


def process_cpu_seconds(pid):
    """CPU time (user + system) process `pid` has used, from /proc/<pid>/stat; None when it cannot
    be read (the process is gone, no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ")"
        fields = raw[raw.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of proc(5)
    except (OSError, ValueError, IndexError):
        return None


class LoadMeter:
    def __init__(self, cpu_clock=time.process_time, clock=time.monotonic):
        self.cpu_clock = cpu_clock
        self.clock = clock
        self.samples = collections.deque()  # (when, CPU seconds so far, worst delay since the previous)

    def sample(self, worst_delay):
        """Record one heartbeat's reading; returns the figures over the window, None until it
        spans a second (a figure from one instant would be noise, not load)."""
        now = self.clock()
        cpu = self.cpu_clock()
        samples = self.samples
        if cpu is None:  # nothing to measure from: no figure, rather than one across a gap
            samples.clear()
            return None
        samples.append((now, cpu, worst_delay))
        while len(samples) > 2 and now - samples[1][0] >= WINDOW_S:
            samples.popleft()
        first, last = samples[0], samples[-1]
        span = last[0] - first[0]
        if span < 1.0:
            return None
        worst = max(s[2] for s in list(samples)[1:])
        return {
            "cpu": round(max(0.0, (last[1] - first[1]) / span), 3),
            "delay_ms": round(worst * 1000, 1),
            "window_s": round(span, 1),
        }
