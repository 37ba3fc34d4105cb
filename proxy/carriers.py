"""Per-carrier counters of this proxy process, for its heartbeat (shape: lbcore.carriers).

Keyed by the transaction's carrier (TableView.route_for): a source rule's carrier name or "other",
so the keys are bounded by the table people configured, never by what a caller sends. Two calls
per INVITE, both O(1): `arrived` when it is dispatched (the calls-per-second ring) and `final`
when its final response goes to the caller (core.finalize, once per transaction); or one, `shed`,
for an INVITE refused before it had a transaction.
"""

from lbcore.carriers import (
    ANSWERED,
    CANCELED,
    FAILURE_CLASSES,
    RECENT_BUCKET_SECONDS,
    RECENT_BUCKETS,
    REDIRECTED,
    SETUP_EDGES,
    outcome,
    setup_bucket,
)
from proxy.accounting import CURRENT_SECONDS, RING_SECONDS, DestCounters

_OUTCOMES = {code: outcome(code) for code in range(200, 700)}


class CarrierCounters:
    __slots__ = ("calls", "answered", "canceled", "redirected", "failed", "setup", "ring", "second", "recent", "slot")

    # the per-second ring of new calls, exactly as a destination's (proxy.accounting)
    advance = DestCounters.advance
    rate = DestCounters.rate

    def __init__(self):
        self.calls = 0
        self.answered = 0
        self.canceled = 0
        self.redirected = 0
        self.failed = dict.fromkeys(FAILURE_CLASSES, 0)
        self.setup = [0] * (len(SETUP_EDGES) + 1)
        self.ring = [0] * RING_SECONDS
        self.second = 0
        self.recent = [[0, 0, 0] for _ in range(RECENT_BUCKETS)]  # calls, answered, failed per bucket
        self.slot = 0  # the newest recent bucket's number: seconds // RECENT_BUCKET_SECONDS

    def recent_bucket(self, now):
        slot = int(now) // RECENT_BUCKET_SECONDS
        gap = slot - self.slot
        if gap:
            if gap >= RECENT_BUCKETS or gap < 0:
                for b in self.recent:
                    b[:] = (0, 0, 0)
            else:
                for s in range(self.slot + 1, slot + 1):
                    self.recent[s % RECENT_BUCKETS][:] = (0, 0, 0)
            self.slot = slot
        return self.recent[slot % RECENT_BUCKETS]

    def figures(self, now):
        self.recent_bucket(now)  # drop the buckets that fell out of the window
        return {
            "calls": self.calls,
            ANSWERED: self.answered,
            CANCELED: self.canceled,
            REDIRECTED: self.redirected,
            "failed": dict(self.failed),
            "cps": round(self.rate(now, CURRENT_SECONDS), 1),
            "setup_buckets": list(self.setup),
            "recent": {
                "calls": sum(b[0] for b in self.recent),
                "answered": sum(b[1] for b in self.recent),
                "failed": sum(b[2] for b in self.recent),
            },
        }


class Carriers:
    def __init__(self):
        self.counters = {}  # carrier name -> CarrierCounters

    def _get(self, carrier):
        c = self.counters.get(carrier)
        if c is None:
            c = self.counters[carrier] = CarrierCounters()
        return c

    def arrived(self, carrier, now):
        """A new INVITE from `carrier` is dispatched (`now`: a monotonic clock, the loop's)."""
        c = self._get(carrier)
        sec = int(now)
        if sec != c.second:
            c.advance(sec)
        c.ring[sec % RING_SECONDS] += 1

    def final(self, carrier, code, setup, now):
        """The caller got final response `code`, `setup` seconds after its INVITE arrived."""
        c = self._get(carrier)
        c.calls += 1
        kind = _OUTCOMES.get(code, "6xx" if code >= 600 else "4xx")
        bucket = c.recent_bucket(now)
        bucket[0] += 1
        if kind == ANSWERED:
            c.answered += 1
            bucket[1] += 1
        elif kind == CANCELED:
            c.canceled += 1
            return  # how long a caller let it ring is not setup time
        elif kind == REDIRECTED:
            c.redirected += 1
        else:
            c.failed[kind] += 1
            bucket[2] += 1
        c.setup[setup_bucket(setup)] += 1

    def shed(self, carrier, now):
        """A new INVITE from `carrier` refused statelessly for overload (Router.shed): a call that got
        a 503. No transaction, so no setup time; a retransmission of it that is shed again counts again."""
        self.arrived(carrier, now)
        c = self._get(carrier)
        c.calls += 1
        c.failed["5xx"] += 1
        bucket = c.recent_bucket(now)
        bucket[0] += 1
        bucket[2] += 1

    def snapshot(self, now):
        """name -> figures (lbcore.carriers), for the heartbeat: worked out once a second, not per call."""
        return {name: c.figures(now) for name, c in self.counters.items()}
