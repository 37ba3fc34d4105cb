"""Cheap timers for many transactions.

`TimerWheel`: one loop callback per tick runs every due entry, so arming a timer is a
list append and cancelling it is a flag, instead of a libuv timer per transaction.
Callbacks get how late they run, so a caller can tell a slow peer from a slow loop.
The wheel wakes only for a tick that holds timers: under load that is every tick, but an
idle proxy's wheel used to wake 100 times a second to find nothing due.

`ExpiryQueue`: for lifetimes that are all the same length (transaction linger, dialog
expiry) a FIFO is already sorted by deadline: O(1) to add, O(1) to expire.
"""

import collections
import heapq
import logging
import math

log = logging.getLogger("proxy.timers")


class Timer:
    __slots__ = ("when", "fn", "arg", "active")

    def __init__(self, when, fn, arg):
        self.when = when
        self.fn = fn
        self.arg = arg
        self.active = True

    def cancel(self):
        self.active = False


class TimerWheel:
    def __init__(self, loop, tick=0.01):
        self.loop = loop
        self.tick = tick
        self.slots = {}
        self.due = []  # heap of the slots that hold timers
        self.current = int(loop.time() / tick)  # the first slot not yet run
        self.handle = None
        self.armed = math.inf  # the slot self.handle wakes for
        self.running = False
        self.lag = 0.0  # how late the last tick ran: our own loop's delay

    def start(self):
        self.running = True
        if self.due:
            self._arm(self.loop.time(), self.due[0])

    def _arm(self, now, slot):
        """Wake at the start of `slot`, never before it. uvloop counts in whole milliseconds and
        rounds a delay to the nearest: 9.4 ms became 9, the wheel woke 0.4 ms early, found nothing
        due, asked for 0.4 ms (rounded to 0, "at once") and spun until the millisecond turned:
        about 900 empty polls a second, over a quarter of an idle proxy's CPU. Rounded up, it wakes once."""
        if self.handle is not None:
            self.handle.cancel()
        delay = math.ceil((slot * self.tick - now) * 1000 - 1e-6) / 1000
        self.armed = slot
        self.handle = self.loop.call_later(max(delay, 0.001), self._run)

    def stop(self):
        self.running = False
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.armed = math.inf

    def call_later(self, delay, fn, arg):
        when = self.loop.time() + delay
        timer = Timer(when, fn, arg)
        slot = int(when / self.tick) + 1
        bucket = self.slots.get(slot)
        if bucket is None:
            self.slots[slot] = [timer]
            heapq.heappush(self.due, slot)
            if slot < self.armed and self.running:
                self._arm(when - delay, max(slot, self.current))
        else:
            bucket.append(timer)
        return timer

    def _run(self):
        self.handle = None
        armed, self.armed = self.armed, -1  # timers armed by the callbacks wait for the end of the run
        now = self.loop.time()
        upto = int(now / self.tick)
        self.lag = now - armed * self.tick
        slots, due = self.slots, self.due
        while due and due[0] <= upto:
            bucket = slots.pop(heapq.heappop(due))
            for timer in bucket:
                if timer.active:
                    timer.active = False
                    try:
                        timer.fn(timer.arg, now - timer.when)
                    except Exception:  # a bug in one transaction must not stop every timer
                        log.exception("timer callback failed")
        self.current = upto + 1
        self.armed = math.inf
        if due and self.running:
            self._arm(now, max(due[0], self.current))

    def __len__(self):
        return sum(len(b) for b in self.slots.values())


class ExpiryQueue:
    def __init__(self, lifetime):
        self.lifetime = lifetime
        self.items = collections.deque()

    def add(self, now, item):
        self.items.append((now + self.lifetime, item))

    def expire(self, now):
        """Yield the items whose lifetime is over."""
        items = self.items
        while items and items[0][0] <= now:
            yield items.popleft()[1]

    def __len__(self):
        return len(self.items)
