"""Ask a quiet server that holds ringing calls whether it is still there.

proxy.silence finds a hung server through the INVITEs it leaves unanswered. With no new INVITE
going to it (a quiet hour, a set whose other servers took the last calls), nothing would: the
calls it had answered 180 would ring on to fr_inv_timer (30 s) and fail with 408, where a crashed
server's move on at once (ICMP). A ringing server may legitimately send nothing for a minute, so
silence alone proves nothing; an unanswered question does. While a server holds ringing calls and
nothing has been heard from it for QUIET_S, the proxy sends it an OPTIONS of its own (again at T1
over UDP). Any reply at all (a 404 or 405 from a server without OPTIONS too), or anything else
from it, means alive. None within ANSWER_S: it is hung, marked suspect (the prober settles it)
and its ringing calls go on to the next server with a CANCEL (Core.hung).

Only a server known to answer OPTIONS is asked: one the prober reports up, or one the operator
flagged for pinging (Kamailio's P flag). A carrier that drops OPTIONS from strangers must not lose
its ringing calls for it. A busy server is never asked: its replies to other calls keep it heard.
"""

import logging

from lbcore.contract import UP
from proxy import silence
from sip import transaction as tx
from sip.options import build_request, new_call_id, new_tag
from sip.transaction import new_branch

log = logging.getLogger("proxy.ringwatch")

QUIET_S = 2.0  # nothing heard for this long from a server holding ringing calls: ask it
ANSWER_S = 1.0  # no reply to the question in this long (nor anything else from it): hung; longer
# for a server whose first replies have lately been slow (silence.FACTOR x its slowest)
MAX_REARMS = 20  # our own loop was late: look again, this many times at most


class Question:
    __slots__ = ("addr", "proto", "listener", "dest", "data", "sent_at", "branch", "rearms", "wait")

    def __init__(self, addr, proto, listener, dest, data, sent_at, branch, wait):
        self.addr = addr
        self.proto = proto
        self.listener = listener
        self.dest = dest
        self.data = data
        self.sent_at = sent_at
        self.branch = branch
        self.rearms = 0
        self.wait = wait


class RingingWatch:
    def __init__(self):
        self.asked = {}  # address -> the Question in flight
        self.by_branch = {}  # the question's Via branch -> its Question
        self.sent = 0  # questions asked since start (tests, logs)

    def sweep(self, core, now):
        """Called a few times a second while some server holds ringing calls."""
        heard = core.silence.heard
        for addr, ringing in list(core.ringing_by_addr.items()):  # a send may find it dead (ICMP)
            if not ringing or addr in self.asked:
                continue
            if now - heard.get(addr, -1.0) < QUIET_S:  # its 180s count: a ringing call is heard once
                continue
            dest = next((d for d in core.view.by_addr.get(addr, ()) if _answers_options(core, d)), None)
            if dest is None:
                continue
            self._ask(core, addr, next(iter(ringing)), dest, now)

    def answered(self, core, branch, addr):
        """A response whose branch no transaction knows: True when it answers one of our questions."""
        q = self.by_branch.get(branch)
        if q is None or q.addr != addr:  # only the server asked may say it is alive
            return False
        del self.by_branch[branch]
        if self.asked.get(q.addr) is q:
            del self.asked[q.addr]
        core.silence.heard_from(q.addr, core.loop.time())
        return True

    def _ask(self, core, addr, ct, dest, now):
        branch = new_branch()
        lis = ct.listener
        try:
            data = build_request(
                dest.uri,  # validated where it is stored, and again here
                from_uri="sip:lbpanel@lbpanel.invalid",
                transport=ct.proto,
                via=(lis.via_prefix + branch)[len(b"Via: ") :].decode("latin-1"),
                branch=branch.decode(),
                call_id=new_call_id(),
                from_tag=new_tag(),
                user_agent=core.view.server.decode("latin-1"),
            )
        except ValueError as exc:  # never expected: the sweep that called us must go on regardless
            if core.crash_logs.allow(now):
                log.warning("cannot ask destination %s whether it is alive: %s", dest.id, exc)
            return
        q = Question(addr, ct.proto, lis, dest, data, now, branch, answer_wait(core.silence, addr))
        self.asked[addr] = q
        self.by_branch[branch] = q
        self.sent += 1
        log.debug("asking %s (%s:%s) with OPTIONS whether it is alive: it holds ringing calls, nothing heard", dest.uri, *addr)
        core.send(q.proto, addr, data, lis)
        if q.proto == "udp":
            core.wheel.call_later(tx.T1, self._again, (core, q))
        core.wheel.call_later(q.wait, self._verdict, (core, q))

    def _again(self, state, _late):
        core, q = state
        if self.asked.get(q.addr) is q:
            core.send(q.proto, q.addr, q.data, q.listener)

    def _verdict(self, state, late):
        from proxy.core import OUR_LOOP, UNREACHABLE  # noqa: PLC0415 (proxy.core imports this module)

        core, q = state
        addr = q.addr
        if self.asked.get(addr) is not q:
            return  # answered
        if core.silence.heard.get(addr, -1.0) >= q.sent_at or not core.ringing_by_addr.get(addr):
            self._forget(q)  # heard from it meanwhile, or nothing left ringing on it
            return
        cause = core.silence_cause(late, q)
        if cause is UNREACHABLE:
            self._forget(q)
            core.on_unreachable(q.proto, addr, "ICMP port unreachable")
            return
        if cause is OUR_LOOP and q.rearms < MAX_REARMS:
            q.rearms += 1
            core.wheel.call_later(0.1, self._verdict, state)
            return
        self._forget(q)
        quiet = core.loop.time() - core.silence.heard.get(addr, q.sent_at)
        reason = f"OPTIONS unanswered for {int(q.wait * 1000)} ms, nothing heard from it for {quiet:.1f} s"
        core.mark_suspect(q.dest, None, reason, b"")
        core.hung(addr, reason)

    def _forget(self, q):
        if self.asked.get(q.addr) is q:
            del self.asked[q.addr]
        self.by_branch.pop(q.branch, None)


def answer_wait(watch, addr):
    """How long a server at addr gets to answer the question: a slow one, more."""
    slow = silence.FACTOR * watch.peak.get(addr, 0.0)
    return slow if slow > ANSWER_S else ANSWER_S


def _answers_options(core, dest):
    if dest.probing:
        return True
    health = core.health.get(dest.id)
    return health is not None and health.state == UP
