"""How busy this proxy process is, for its heartbeat: its share of one CPU core and its worst delay
over the last WINDOW_S.

One proxy process runs its event loop on one core. Near 100 % of that core it has no headroom
left: the loop falls behind, the overload guard sees the delay and sheds new calls with 503. The
panel shows this figure so ops add a process (LBPANEL_PROXY_PROCESSES) or a node before that
point, not after the first 503s. CPU time is the whole process's (the resolver's threads too);
the delay is the overload guard's own signal (proxy/overload.py): loop lag or the age of the
oldest datagram waiting, whichever is worse. Read once a heartbeat, nothing on the message path.
"""

import collections
import time

WINDOW_S = 10.0


class LoadMeter:
    def __init__(self, cpu_clock=time.process_time, clock=time.monotonic):
        self.cpu_clock = cpu_clock
        self.clock = clock
        self.samples = collections.deque()  # (when, CPU seconds so far, worst delay since the previous)

    def sample(self, worst_delay):
        """Record one heartbeat's reading; returns the figures over the window, None until it
        spans a second (a figure from one instant would be noise, not load)."""
        now = self.clock()
        samples = self.samples
        samples.append((now, self.cpu_clock(), worst_delay))
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
