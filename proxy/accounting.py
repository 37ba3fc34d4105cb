"""Calls and counters of this node, and the loads of the others.

A call is active from the first 2xx of its dispatched INVITE until a BYE passes (either
side) or the dialog expires; a retransmitted 2xx finds the Call-ID already counted.
Algorithm 10 reads `loads()`: calls up on every live node (from their heartbeats), plus
our own INVITEs still in flight, so a burst does not all land on the least-loaded server.
"""

import collections
import time

from proxy.table import NODE_COUNTERS


class DestCounters:
    __slots__ = ("active", "invites", "answered", "failovers", "inflight", "seconds")

    def __init__(self):
        self.active = 0
        self.invites = 0
        self.answered = 0
        self.failovers = 0
        self.inflight = 0
        self.seconds = collections.deque()  # (second, count) for the last minute

    def tick(self, now):
        sec = int(now)
        secs = self.seconds
        if secs and secs[-1][0] == sec:
            secs[-1][1] += 1
        else:
            secs.append([sec, 1])
            while secs and secs[0][0] <= sec - 60:
                secs.popleft()

    def cps(self, now):
        cutoff = int(now) - 60
        return round(sum(c for s, c in self.seconds if s > cutoff) / 60.0, 2)


class Accounting:
    def __init__(self, core):
        self.core = core
        self.totals = {k: 0 for k in NODE_COUNTERS}
        self.dests = collections.defaultdict(DestCounters)
        self.dialogs = {}  # call-id -> destination id
        self.expiry = collections.deque()  # (deadline, call-id)
        self.remote_active = {}  # destination id -> calls up on the other live nodes

    def branch_started(self, st, dest):
        """An INVITE went to `dest` (first try or failover): in flight until it is final."""
        prev = st.counted
        if prev:
            self.dests[prev].inflight -= 1
        c = self.dests[dest.id]
        c.inflight += 1
        c.invites += 1
        c.tick(time.time())
        st.counted = dest.id

    def finished(self, st):
        if st.counted:
            self.dests[st.counted].inflight -= 1
            st.counted = None

    def answered(self, st, ct, resp):
        self.finished(st)
        if not st.dispatch or ct.dest is None:
            return
        call_id = st.call_id
        if call_id in self.dialogs:
            return
        did = ct.dest.id
        self.dialogs[call_id] = did
        self.expiry.append((time.time() + self.core.view.dialog_timeout, call_id))
        c = self.dests[did]
        c.active += 1
        c.answered += 1
        self.totals["answered"] += 1

    def bye(self, call_id):
        did = self.dialogs.pop(call_id, None)
        if did is not None:
            self.dests[did].active -= 1

    def failover(self, dest):
        self.totals["failovers"] += 1
        if dest is not None:
            self.dests[dest.id].failovers += 1

    def expire(self, now):
        exp = self.expiry
        while exp and exp[0][0] <= now:
            _, call_id = exp.popleft()
            self.bye(call_id)

    def loads(self):
        out = dict(self.remote_active)
        for did, c in self.dests.items():
            out[did] = out.get(did, 0) + c.active + c.inflight
        return out

    @property
    def active(self):
        return len(self.dialogs)

    def snapshot(self):
        now = time.time()
        totals = dict(self.totals)
        totals["active"] = self.active
        dests = {
            did: {
                "active": c.active,
                "invites": c.invites,
                "answered": c.answered,
                "failovers": c.failovers,
                "cps": c.cps(now),
            }
            for did, c in self.dests.items()
        }
        return totals, dests
