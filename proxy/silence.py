"""Tell a server that went silent from one slow INVITE: a hung Asterisk, a host that lost power.

A stopped server sends no ICMP, so silence is the only sign. trying_timeout (500 ms) waits for
the 100 of one INVITE; at 15 calls/s to a server that is seven more INVITEs sent into the
silence. A live server answers *something* all the time (the 100 of another call, a 200, the
reply to a BYE), so "nothing at all heard from it since this INVITE left" is a stronger sign
than "this INVITE got no 100" and may be acted on sooner: after FACTOR x the slowest first
reply lately seen from that server, at least FLOOR, at most trying_timeout. A server that
answers other requests but not this one still gets the full trying_timeout.

Found silent, a server is only avoided ("quiet", local to this process) and its waiting INVITEs
fail over; it is marked suspect (Redis, a probe) only if it is still silent at trying_timeout.
Then it is hung, and the calls it had answered 100 or 18x just before move on as well (Core.hung).
On a starved host a live server can be silent for 100 ms: its late reply ends the quiet spell.

That deadline is a time, and callers come in bursts: SIPp sent 15 calls in the 104 ms after a
server hung, and 5 of them went to it. So there is a count bound as well: a server with
`pile_limit` INVITEs sent and nothing at all heard back since the first of them left PILE_GRACE
ago (or FACTOR x its slowest recent first reply, if longer) takes no new INVITE while another
server can. It is only a preference, never a refusal: when every server is piling (our own loop
fell behind, every reply waits unread), they all stay in. `--processes N` shares the bound: each
process allows 3 // N, at least 1 (so past 3 processes, one INVITE per process). A server far
away (30 ms) is not mistaken for a silent one once it has answered: its grace is then 4 x its
own first-reply time; before its first answer it may lose a call or two to the others.
"""

from proxy.transactions import CALLING

FLOOR = 0.1
PILE_LIMIT = 3  # new INVITEs a silent server may get in all, issue 15
PILE_GRACE = 0.02  # a live server answers something within 20 ms; a silent one has had its chance
FACTOR = 4.0
DECAY = 0.98  # per reply: a slow spell long past stops widening the deadline
MAX_ADDRS = 10000  # addresses of destinations only, so this is a guard, not a working limit


class SilenceWatch:
    __slots__ = ("heard", "peak", "quiet", "unanswered", "pile_limit")

    def __init__(self):
        self.heard = {}  # destination address -> loop time of the last response from it
        self.peak = {}  # destination address -> decaying peak of INVITE sent -> first reply (s)
        self.quiet = {}  # destination address -> when the INVITE that found it silent left
        # destination address -> [INVITEs sent since the last reply, when the first of them left]
        self.unanswered = {}
        self.pile_limit = PILE_LIMIT  # this process's share of it: share()

    def replied(self, ct, now):
        """A response on a branch to a destination: it is alive now."""
        addr = ct.addr
        self.heard_from(addr, now)
        if ct.is_invite and ct.state == CALLING:  # the first reply to this INVITE
            sample = now - ct.sent_at
            peak = self.peak.get(addr, 0.0) * DECAY
            self.peak[addr] = sample if sample > peak else peak

    def heard_from(self, addr, now):
        """Anything came back from addr (a reply on a branch, an answer to proxy.ringwatch's question)."""
        heard = self.heard
        if addr not in heard and len(heard) >= MAX_ADDRS:
            heard.clear()
            self.peak.clear()
        heard[addr] = now
        if self.unanswered:
            self.unanswered.pop(addr, None)
        if self.quiet:
            self.quiet.pop(addr, None)  # alive after all: a starved host's server answers late

    def share(self, processes):
        """One of `processes` behind one address: the bound is the address's, split between them."""
        self.pile_limit = max(1, PILE_LIMIT // processes)

    def invite_sent(self, addr, now):
        """A new INVITE (not a retransmission) left for addr."""
        pile = self.unanswered.get(addr)
        if pile is None:
            if len(self.unanswered) >= MAX_ADDRS:
                self.unanswered.clear()
            self.unanswered[addr] = [1, now]
        else:
            pile[0] += 1

    def piling(self, addr, now, trying_timeout):
        """Has addr had pile_limit INVITEs, and nothing back for longer than a live server takes?
        Past trying_timeout the count starts again: by then the server is suspect or quiet, or it
        lost the INVITEs (a restart) and may take new ones."""
        pile = self.unanswered.get(addr)
        if pile is None or pile[0] < self.pile_limit:
            return False
        age = now - pile[1]
        if age >= trying_timeout:
            del self.unanswered[addr]
            return False
        grace = FACTOR * self.peak.get(addr, 0.0)
        return age >= (grace if grace > PILE_GRACE else PILE_GRACE)

    def deadline(self, addr, trying_timeout):
        """When to first ask whether the server at addr has gone silent."""
        wait = FACTOR * self.peak.get(addr, 0.0)
        if wait < FLOOR:
            wait = FLOOR
        return wait if wait < trying_timeout else trying_timeout

    def silent_since(self, addr, since):
        """Has nothing been heard from addr since loop time `since`?"""
        return self.heard.get(addr, -1.0) < since

    def avoid(self, core, ct, waited):
        """The server of branch `ct` went silent: new calls avoid it and every INVITE waiting on
        it fails over now, while another server can take them; it is marked suspect only if it
        stays silent until trying_timeout. False when no other server could take the calls:
        then trying_timeout decides, as it always did."""
        st = ct.server
        addr = ct.addr
        self.quiet[addr] = ct.sent_at
        if st.dset is None or not any(core.is_usable(d) for d in st.dset.destinations):
            del self.quiet[addr]
            return False
        reason = f"no provisional, nothing heard from it for {int(waited * 1000)} ms"
        for other in list(core.calling_by_addr.get(addr, ())):
            if other.is_invite and other.t_trying is not None and other.state == CALLING and not other.abandoned:
                core.router.branch_dead(other, reason, mark=False)
        core.router.branch_dead(ct, reason, mark=False)
        core.wheel.call_later(core.view.trying_timeout - waited, self._verdict, (core, ct, ct.sent_at, st.call_id))
        return True

    def _verdict(self, state, late):
        from proxy.core import OUR_LOOP  # noqa: PLC0415 (proxy.core imports this module)

        core, ct, since, call_id = state
        addr = ct.addr
        if self.quiet.get(addr) != since:
            return  # heard from it meanwhile
        if core.silence_cause(late, ct) is OUR_LOOP and ct.trying_rearms < 20:
            ct.trying_rearms += 1
            core.wheel.call_later(0.1, self._verdict, state)
            return
        del self.quiet[addr]
        ms = int(core.view.trying_timeout * 1000)
        core.mark_suspect(ct.dest, None, f"no provisional within {ms} ms, nothing heard from it since", call_id)
        core.hung(addr, f"nothing heard from it for {ms} ms")
