"""Cheap timers for many transactions.

`TimerWheel`: one loop callback per tick runs every due entry, so arming a timer is a
list append and cancelling it is a flag, instead of a libuv timer per transaction.
Callbacks get how late they run, so a caller can tell a slow peer from a slow loop.

`ExpiryQueue`: for lifetimes that are all the same length (transaction linger, dialog
expiry) a FIFO is already sorted by deadline: O(1) to add, O(1) to expire.
"""

import collections
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
        self.current = int(loop.time() / tick)
        self.handle = None
        self.lag = 0.0  # how late the last tick ran: our own loop's delay

    def start(self):
        self._arm(self.loop.time(), self.current + 1)

    def _arm(self, now, slot):
        """Wake at the start of `slot`, never before it. uvloop counts in whole milliseconds and
        rounds a delay to the nearest: 9.4 ms became 9, the wheel woke 0.4 ms early, found nothing
        due, asked for 0.4 ms (rounded to 0, "at once") and spun until the millisecond turned:
        about 900 empty polls a second, over a quarter of an idle proxy's CPU. Rounded up, it wakes once."""
        delay = math.ceil((slot * self.tick - now) * 1000 - 1e-6) / 1000
        self.handle = self.loop.call_later(max(delay, 0.001), self._run)

    def stop(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def call_later(self, delay, fn, arg):
        when = self.loop.time() + delay
        timer = Timer(when, fn, arg)
        slot = int(when / self.tick) + 1
        bucket = self.slots.get(slot)
        if bucket is None:
            self.slots[slot] = [timer]
        else:
            bucket.append(timer)
        return timer

    def _run(self):
        now = self.loop.time()
        upto = int(now / self.tick)
        self.lag = now - (self.current + 1) * self.tick
        slots = self.slots
        for slot in range(self.current, upto + 1):
            bucket = slots.pop(slot, None)
            if bucket is None:
                continue
            for timer in bucket:
                if timer.active:
                    timer.active = False
                    try:
                        timer.fn(timer.arg, now - timer.when)
                    except Exception:  # a bug in one transaction must not stop every timer
                        log.exception("timer callback failed")
        self.current = upto + 1
        self._arm(now, upto + 1)

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
