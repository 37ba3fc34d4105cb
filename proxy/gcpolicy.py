"""Keep the cyclic garbage collector off the call path.

At 1,000 calls/s the proxy holds a few hundred thousand live objects (transactions linger
32 s). CPython's automatic full collection scans them all: a 250-300 ms stop every few
seconds, which is the whole p99. Our own objects form no cycles (the transaction tables
break theirs on expiry), so refcounting frees them; the young generations still catch
short-lived cycles from libraries. Full collections run on our schedule instead, timed
and logged, and only every FULL_EVERY seconds.

Only generation 0 is collected by allocation counts. What survives it is nearly all live
transaction state (it lingers 32 s), so collecting generation 1 as well (every 5th young
collection) rescanned tens of thousands of live objects 2-3 times a second at 2,000 calls/s:
5-20 ms pauses, in the setup p99. Cyclic garbage that outlives one young collection waits for
the scheduled full collection instead.
"""

import gc
import logging
import time

log = logging.getLogger("proxy.gc")

FULL_EVERY = 600.0
YOUNG_THRESHOLD = (2000, 1_000_000_000)  # generation 1 never by counts: see above


def install():
    """Call once when the proxy starts serving."""
    gc.collect()
    gc.freeze()  # start-up objects (modules, the table) never need scanning again
    # thresholds 1 and 2 so high that neither triggers by itself; full() does it on schedule
    gc.set_threshold(YOUNG_THRESHOLD[0], YOUNG_THRESHOLD[1], 1_000_000_000)


class Scheduler:
    def __init__(self):
        self.last = time.monotonic()

    def maybe_full(self):
        now = time.monotonic()
        if now - self.last < FULL_EVERY:
            return
        self.last = now
        started = time.perf_counter()
        found = gc.collect()
        took = time.perf_counter() - started
        if took > 0.05:
            log.info("full garbage collection took %.0f ms, freed %d objects", took * 1000, found)
