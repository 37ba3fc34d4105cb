"""Calls and counters of this node, and the loads of the others.

A call is active from the first 2xx of its dispatched INVITE until a BYE passes (either
side) or the dialog expires; a retransmitted 2xx finds the Call-ID already counted.
Algorithm 10 reads `loads()`: calls up on every live node (from their heartbeats), plus
our own INVITEs still in flight, so a burst does not all land on the least-loaded server.

While a DialogStore runs (`recording`), each answered call and each end is also queued for
lb:dialogs:<node> (proxy.dialogs flushes the queue off the message path): the calls up are
cluster state. A BYE of a call this process does not know (our previous process's, a dead
node's after a takeover) queues the removal of its record wherever it is; records adopted
from Redis (`adopt`) are counted here and expire like our own.
"""

import asyncio
import collections
import heapq
import time

from lbcore.contract import NODE_COUNTERS

_ENDED_MAX = 100_000  # Call-IDs of unknown calls whose BYE passed (a second BYE is not looked up again)

RING_SECONDS = 60  # new calls per second, for the last minute: the 1-minute average and the current rate
CURRENT_SECONDS = 10  # the current rate is over the last 10 s


class DestCounters:
    __slots__ = ("active", "invites", "answered", "failovers", "inflight", "ring", "second")

    def __init__(self):
        self.active = 0
        self.invites = 0
        self.answered = 0
        self.failovers = 0
        self.inflight = 0
        self.ring = [0] * RING_SECONDS  # calls dispatched in each second, at second % RING_SECONDS
        self.second = 0  # the newest second the ring holds

    def advance(self, sec):
        """Make `sec` the ring's newest second: the seconds it passes over had no calls."""
        ring = self.ring
        gap = sec - self.second
        if gap >= RING_SECONDS or gap < 0:  # idle a minute or more (or the clock stepped back)
            ring[:] = [0] * RING_SECONDS
        else:
            for s in range(self.second + 1, sec + 1):
                ring[s % RING_SECONDS] = 0
        self.second = sec

    def rate(self, now, seconds):
        """New calls per second over the last `seconds` seconds up to `now` (this second's part included)."""
        sec = int(now)
        if sec != self.second:
            self.advance(sec)
        ring = self.ring
        calls = sum(ring[s % RING_SECONDS] for s in range(sec - seconds + 1, sec + 1))
        # the window is the last seconds - 1 whole seconds plus the part of this one gone by
        return calls / (seconds - 1 + (now - sec) or 1.0)


class Accounting:
    def __init__(self, core):
        self.core = core
        self.totals = {k: 0 for k in NODE_COUNTERS}
        self.dests = collections.defaultdict(DestCounters)
        self.dialogs = {}  # call-id -> destination id
        self.expiry = collections.deque()  # (deadline, call-id)
        self.remote_active = {}  # destination id -> calls up on the other live nodes
        self.adopted_expiry = []  # heap of (deadline, call-id) of calls adopted from Redis
        self.recording = False  # a DialogStore flushes record_adds / record_removals
        self.record_wake = asyncio.Event()  # set by each change: the DialogStore sleeps while nothing changes
        self.record_adds = {}  # call-id -> (destination, INVITE, 2xx, start): answered, not yet in Redis
        self.record_removals = []  # call-ids ended, their records not yet removed from Redis
        self.ended_unknown = {}  # call-id -> None: BYEs of calls not in memory, insertion-ordered
        self.clock = time.monotonic  # of the call rates only; tests step it instead of sleeping
        self.read_totals = {}  # counter name -> callable: counted outside this process (sharding's reader)

    def invite(self):
        """A new INVITE came in (dispatched or shed)."""
        self.totals["invites"] += 1

    def shed(self):
        """A new INVITE refused for overload: with 503 + Retry-After."""
        totals = self.totals
        totals["shed"] += 1
        totals["sent_503"] += 1

    def sent_503(self):
        """We answered a dispatched request 503: no destination left to try."""
        self.totals["sent_503"] += 1

    def refused(self):
        """A request answered once, statelessly, and forgotten (Router.refuse)."""
        self.totals["refused"] += 1

    def tcp_refused(self, cap):
        """An inbound TCP connection refused: `cap` is "cap" (connections in all) or "per_ip"."""
        self.totals["tcp_refused_" + cap] += 1

    def tcp_closed(self, why):
        """We closed a TCP connection: "idle", "incomplete", "unframeable" or "write_stalled";
        for TLS also "handshake_timeout" or "handshake_failed"."""
        self.totals["tcp_closed_" + why] += 1

    def branch_started(self, st, dest):
        """An INVITE went to `dest` (first try or failover): in flight until it is final."""
        prev = st.counted
        if prev:
            self.dests[prev].inflight -= 1
        c = self.dests[dest.id]
        c.inflight += 1
        c.invites += 1
        sec = int(self.clock())
        if sec != c.second:
            c.advance(sec)
        c.ring[sec % RING_SECONDS] += 1
        st.counted = dest.id

    def finished(self, st):
        if st.counted:
            self.dests[st.counted].inflight -= 1
            st.counted = None

    def answered(self, st, ct, resp=None):
        self.finished(st)
        if not st.dispatch or ct.dest is None:
            return
        call_id = st.call_id
        if call_id in self.dialogs:
            return
        did = ct.dest.id
        self.dialogs[call_id] = did
        now = time.time()
        self.expiry.append((now + self.core.view.dialog_timeout, call_id))
        if self.recording:
            self.record_adds[call_id] = (ct.dest, st.req, resp, now)  # encoded by the flusher
            self.record_wake.set()
        c = self.dests[did]
        c.active += 1
        c.answered += 1
        self.totals["answered"] += 1

    def bye(self, call_id, msg=None):
        """A BYE passed (`msg`), or a dialog expired (no `msg`)."""
        did = self.dialogs.pop(call_id, None)
        if did is not None:
            self.dests[did].active -= 1
            self.core.calllog.ended(call_id, msg)
            if self.recording and self.record_adds.pop(call_id, None) is None:
                self.record_removals.append(call_id)
                self.record_wake.set()
        elif msg is not None and self.recording and call_id not in self.ended_unknown:
            # not ours: a call of our previous process or of a dead node, whose record is in Redis
            if len(self.ended_unknown) >= _ENDED_MAX:
                del self.ended_unknown[next(iter(self.ended_unknown))]
            self.ended_unknown[call_id] = None
            self.record_removals.append(call_id)
            self.record_wake.set()

    def adopt(self, records):
        """Count calls whose records we took over (contract.DialogRecord): ours from now on, their
        BYEs close them here; each expires dialog_timeout after its own 2xx. Returns how many."""
        timeout = self.core.view.dialog_timeout
        taken = 0
        for rec in records:
            call_id = rec.call_id.encode()
            if call_id in self.dialogs:
                continue
            if call_id in self.ended_unknown:
                self.record_removals.append(call_id)  # its BYE passed while the record was on its way
                self.record_wake.set()
                continue
            self.dialogs[call_id] = rec.destination_id
            self.dests[rec.destination_id].active += 1
            heapq.heappush(self.adopted_expiry, (rec.start + timeout, call_id))
            taken += 1
        return taken

    def adopted_ids(self):
        """Call-IDs of the adopted calls still counted here."""
        dialogs = self.dialogs
        return [call_id for _, call_id in self.adopted_expiry if call_id in dialogs]

    def closed_elsewhere(self, call_id):
        """An adopted call whose record someone else closed (a sibling worker or another node relayed
        its BYE, and wrote its end): stop counting it, with nothing more to write."""
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
        adopted = self.adopted_expiry
        while adopted and adopted[0][0] <= now:
            self.bye(heapq.heappop(adopted)[1])

    def loads(self):
        out = dict(self.remote_active)
        for did, c in self.dests.items():
            out[did] = out.get(did, 0) + c.active + c.inflight
        return out

    @property
    def active(self):
        return len(self.dialogs)

    def snapshot(self):
        """Totals and per-destination counters for the heartbeat. The call rates are worked out
        here, once a second, not per call: `cps` over the last 10 s, `cps_1m` over the last minute."""
        now = self.clock()
        totals = dict(self.totals)
        for name, read in self.read_totals.items():
            totals[name] = read()
        totals["active"] = self.active
        dests = {
            did: {
                "active": c.active,
                "invites": c.invites,
                "answered": c.answered,
                "failovers": c.failovers,
                "cps": round(c.rate(now, CURRENT_SECONDS), 1),
                "cps_1m": round(c.rate(now, RING_SECONDS), 2),
            }
            for did, c in self.dests.items()
        }
        return totals, dests
