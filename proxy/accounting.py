"""Calls and counters of this node, and the loads of the others.

A call is active from the first 2xx of its dispatched INVITE until a BYE passes (either
side) or the dialog expires; a retransmitted 2xx finds the Call-ID already counted.
Algorithm 10 reads `loads()`: calls up on every live node (from their heartbeats), plus
our own INVITEs still in flight, so a burst does not all land on the least-loaded server.

A restarted proxy inherits what its previous process had up (`inherit`): those calls are
"unknown" per destination until a BYE we cannot match to a call of ours passes to or from
that destination's address, or dialog_timeout after the restart. Until then no reader may
call the destination drained (lbcore.rules.unvouched_calls).
"""

import collections
import time

from lbcore.contract import NODE_COUNTERS
from sip.errors import SipSyntaxError

_ENDED_MAX = 100_000  # Call-IDs of inherited calls already counted down (a re-sent BYE counts once)

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
        self.inherited = {}  # destination id -> calls our previous process left up, not yet seen to end
        self.inherited_ended = {}  # Call-ID -> None, insertion-ordered so the oldest go first
        self.restarted_at = None
        self.clock = time.monotonic  # of the call rates only; tests step it instead of sleeping

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
        """We closed a TCP connection: "idle", "incomplete", "unframeable" or "write_stalled"."""
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

    def answered(self, st, ct):
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

    def bye(self, call_id, msg=None, next_hop=None, source=None):
        """A BYE passed (or a dialog expired, without `msg`). `next_hop` is the URI it goes to
        (None: its Request-URI), `source` the address it came from: for a Call-ID we do not
        know, they say which server an inherited call was on."""
        did = self.dialogs.pop(call_id, None)
        if did is not None:
            self.dests[did].active -= 1
        elif self.inherited and msg is not None:
            self._inherited_bye(call_id, msg, next_hop, source)

    def inherit(self, calls, now=None):
        """Our previous process (same node name) left `calls` (destination id -> n) up."""
        self.inherited = {int(d): int(n) for d, n in calls.items() if int(n) > 0}
        self.restarted_at = now or time.time()

    def _inherited_bye(self, call_id, msg, next_hop, source):
        if call_id in self.inherited_ended:
            return
        try:
            target = next_hop if next_hop is not None else self.core.uri(msg.uri)
        except (SipSyntaxError, ValueError):
            target = None
        candidates = []
        if target is not None:
            candidates.append((target.host, target.effective_port))
        if source is not None:
            candidates.append(tuple(source[:2]))
        for host, port in candidates:
            for dest in self._dests_at(host, port):
                n = self.inherited.get(dest.id)
                if n:
                    if n > 1:
                        self.inherited[dest.id] = n - 1
                    else:
                        del self.inherited[dest.id]
                    if len(self.inherited_ended) >= _ENDED_MAX:
                        del self.inherited_ended[next(iter(self.inherited_ended))]
                    self.inherited_ended[call_id] = None
                    return

    def _dests_at(self, host, port):
        view = self.core.view
        found = view.by_addr.get((host, port))
        if found:
            return found
        return [d for s in view.table.sets.values() for d in s.destinations if d.host == host and d.port == port]

    def failover(self, dest):
        self.totals["failovers"] += 1
        if dest is not None:
            self.dests[dest.id].failovers += 1

    def expire(self, now):
        exp = self.expiry
        while exp and exp[0][0] <= now:
            _, call_id = exp.popleft()
            self.bye(call_id)
        if self.inherited and now >= self.restarted_at + self.core.view.dialog_timeout:
            # every call from before the restart has outlived dialog_timeout: none counts any more
            self.inherited.clear()

    def loads(self):
        out = dict(self.remote_active)
        for did, c in self.dests.items():
            out[did] = out.get(did, 0) + c.active + c.inflight
        for did, n in self.inherited.items():
            out[did] = out.get(did, 0) + n
        return out

    @property
    def active(self):
        return len(self.dialogs)

    def snapshot(self):
        """Totals and per-destination counters for the heartbeat. The call rates are worked out
        here, once a second, not per call: `cps` over the last 10 s, `cps_1m` over the last minute."""
        now = self.clock()
        totals = dict(self.totals)
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
