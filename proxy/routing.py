"""The request route of the seed's kamailio.cfg, step by step, and its failure route.

request_route: Max-Forwards (483) -> sanity (400) -> CANCEL -> retransmissions ->
Record-Route on INVITE/SUBSCRIBE -> in-dialog by loose routing (404 "Not Here") ->
REGISTER 404 -> OPTIONS to us 200 -> INVITE dispatch -> relay.
Added to the seed: the no-open-relay check (403) on out-of-dialog requests, and an
overload cap on pending INVITEs and overload shedding (503 with Retry-After, see overload.py).
failure_route: on the set's failover codes or a timeout without any reply, mark the
destination suspect and try the next one in the order the algorithm chose.
"""

import logging
import time
import zlib
from functools import partial

from proxy import selection
from proxy.core import FIRST_WORKER_MARK, SIG_PARAM
from proxy.logquota import LogQuota
from proxy.resolver import literal
from proxy.transactions import BRANCH_PREFIX, CALLING, PROCEEDING, build_dialog_request, is_own_branch, new_branch
from sip.errors import SipSyntaxError
from sip.headers import COMPACT, canonical_name, name_addr, split_commas
from sip.message import SipMessage
from sip.responses import received_via, response_bytes

log = logging.getLogger("proxy.routing")

MALFORMED_LOGS_PER_SECOND = 20
REFUSAL_LOGS_PER_SECOND = 20
_STATELESS = b"z9hG4bK-lbs-"
_SALVAGE = (b"via", b"from", b"to", b"call-id", b"cseq")


def _text(b):
    return b.decode("latin-1") if b else "-"


class Router:
    def __init__(self, core):
        self.core = core
        self.log_debug = log.isEnabledFor(logging.DEBUG)
        self.malformed_logs = LogQuota(MALFORMED_LOGS_PER_SECOND, log, "malformed messages")
        self.refusals = LogQuota(REFUSAL_LOGS_PER_SECOND, log, "refusals")

    # -- entry ---------------------------------------------------------------

    def on_request(self, msg, listener, addr, conn):
        core = self.core
        method = msg.method
        msg.check()
        via = msg.via
        if conn is None:
            fixed = received_via(via, addr[0], addr[1])
            if fixed is not None:
                msg.set_top_via(fixed.raw, fixed)
                via = fixed
            reply_addr = (addr[0], addr[1] if via.rport is not None else (via.port or 5060))
        else:
            reply_addr = addr
        branch = via.branch
        if branch and branch.startswith(b"z9hG4bK"):
            txkey = branch
        else:  # RFC 2543 peers: no usable branch, key on the dialog and CSeq instead
            txkey = msg.call_id + b"|%d|" % msg.cseq[0] + (msg.from_tag or b"") + b"|" + via.raw

        if method == b"ACK":
            st = core.servers.get(txkey + b" INVITE")
            if st is not None and st.final_code is not None and st.final_code >= 300:
                core.ack_received(st)  # ACK for our non-2xx: hop by hop, ends here
                return
            self.in_dialog_ack(msg, listener, addr)
            return
        if method == b"CANCEL":
            self.cancel(msg, txkey, listener, reply_addr, conn)
            return
        key = txkey + b" " + method
        st = core.servers.get(key)
        if st is not None:  # retransmission: the last response again, nothing forwarded
            if st.last_response is not None:
                core.send_upstream(st, st.last_response)
            return
        view = core.view
        source = addr[0]
        untrusted = not view.is_trusted(source)
        if untrusted:
            # Nothing from an untrusted address costs state or reaches another host unless
            # it belongs to a dialog we record-routed: refusals are stateless, sent once.
            if msg.to_tag is None:
                self.refuse(msg, txkey, listener, reply_addr, conn, 403, b"Forbidden", "out-of-dialog from untrusted", addr)
                return
            if not self.signed(msg):
                self.refuse(msg, txkey, listener, reply_addr, conn, 403, b"Forbidden", "in-dialog without our signed Route", addr)
                return
            if core.source_full(source):
                self.refuse(
                    msg, txkey, listener, reply_addr, conn, 503, b"Service Unavailable", "transaction cap per source", addr
                )
                return
        if core.transactions_full():
            self.refuse(msg, txkey, listener, reply_addr, conn, 503, b"Service Unavailable", "transaction cap", addr)
            return
        # overload: a new call is refused before it costs a transaction; everything else
        # (in-dialog requests, CANCEL, ACK, responses) still flows so accepted calls complete
        if core.overload.admit < 1.0 and method == b"INVITE" and msg.to_tag is None:
            if not core.overload.admit_invite():
                self.shed(msg, txkey, listener, reply_addr, conn)
                return
        if _passed_us(msg):
            # our own Via below the top one: this request already went through this process
            # and came back (a destination or a next hop that is us under another name)
            self.refuse(msg, txkey, listener, reply_addr, conn, 482, b"Loop Detected", "request looped back to us", addr)
            return
        st = core.new_server(key, msg, listener, reply_addr, conn, source if untrusted else None)
        try:
            mf = msg.max_forwards
            if mf == 0:
                core.reply(st, 483, b"Too Many Hops")
                return
            if msg.to_tag is not None:
                self.in_dialog(msg, st, untrusted)
            else:
                self.out_of_dialog(msg, st, addr)
        except SipSyntaxError as exc:
            if st.final_code is not None or st.branches:
                raise  # answered, or sent on: the transaction runs its course
            # a header read after the transaction was made (a Route, the R-URI): answered through
            # it, so it lingers out and leaves the tables (it stayed for good, a slot of max_per_source too)
            self.malformed_logs.warning(core.loop.time(), "malformed SIP from %s:%s: %s", addr[0], addr[1], exc)
            core.reply(st, 400, b"Bad Request (" + _phrase(str(exc)) + b")")

    def shed(self, msg, txkey, listener, reply_addr, conn):
        """503 + Retry-After, stateless: a retransmission gets another one, the ACK is dropped."""
        core = self.core
        core.accounting.invite()
        core.accounting.shed()
        view = core.view
        core.carriers.shed(view.route_for(reply_addr[0])[1], core.loop.time())
        data = response_bytes(
            msg, 503, b"Service Unavailable", to_tag=b"%x" % zlib.crc32(txkey), extra=view.retry_after, server=view.server
        )
        core.send_back(data, reply_addr, listener, conn)
        if self.log_debug:
            log.debug("shed call-id=%s: overload lag %.0f ms", _text(msg.call_id), core.overload.lag * 1000)

    def refuse(self, msg, txkey, listener, reply_addr, conn, code, reason, why, addr):
        """A stateless answer, once per request: no retransmissions a forged source could aim."""
        core = self.core
        extra = core.view.retry_after if code == 503 else ()
        data = response_bytes(msg, code, reason, to_tag=b"%x" % zlib.crc32(txkey), extra=extra, server=core.view.server)
        core.send_back(data, reply_addr, listener, conn)
        core.accounting.refused()
        if self.refusals.allow(core.loop.time()):
            log.warning(
                "refused %s from %s:%s with %d (%s) call-id=%s",
                _text(msg.method),
                addr[0],
                addr[1],
                code,
                why,
                _text(msg.call_id),
            )

    def signed(self, msg):
        """Is the top Route our Record-Route, signed for this dialog?"""
        top = msg.first_of_list(b"route")
        if top is None:
            return False
        uri_raw, _ = name_addr(top, "Route")
        if not self.core.names_us(uri_raw):
            return False
        at = uri_raw.find(SIG_PARAM)
        if at < 0:
            return False
        sig = uri_raw[at + len(SIG_PARAM) :].split(b";", 1)[0]
        return self.core.signed_by_us(sig, msg.call_id, msg.from_tag, msg.to_tag)

    def cancel(self, msg, txkey, listener, reply_addr, conn):
        core = self.core
        st = core.servers.get(txkey + b" INVITE")
        if st is None:
            data = response_bytes(msg, 481, b"Call/Transaction Does Not Exist", to_tag=b"%x" % zlib.crc32(txkey))
            core.send_back(data, reply_addr, listener, conn)
            return
        if st.to_tag is None:
            st.to_tag = b"%x" % zlib.crc32(st.key)
        core.send_back(response_bytes(msg, 200, b"OK", to_tag=st.to_tag, server=core.view.server), reply_addr, listener, conn)
        if st.final_code is not None or st.canceled:
            return
        core.cancel_server(st)
        if not any(ct.state in (CALLING, PROCEEDING) and not ct.abandoned for ct in st.branches):
            core.reply(st, 487, b"Request Terminated")

    # -- in-dialog -----------------------------------------------------------

    def _next_hop(self, msg):
        """Loose routing's reading of the Route set, leaving it as it is: the URI of the first
        entry that does not name us (None when all do), how many of ours come before it, and
        whether one of ours carries worker 0's mark."""
        core = self.core
        own = 0
        marked = False
        for i, name in enumerate(msg.names):
            if name == b"route":
                value = msg.values[i]
                for entry in split_commas(value, "Route") if b"," in value else (value,):
                    raw = name_addr(entry, "Route")[0]
                    if not core.names_us(raw):
                        return core.uri(raw), own, marked
                    own += 1
                    if FIRST_WORKER_MARK in raw:
                        marked = True
        return None, own, marked

    def first_worker_marked(self, msg):
        """Does one of our entries at the top of the Route set carry worker 0's mark?"""
        return self._next_hop(msg)[2]

    def _pop_own_routes(self, msg):
        """loose_route(): remove the Route entries that name us; return the next one's URI or None."""
        nxt, own, _ = self._next_hop(msg)
        for _ in range(own):
            msg.pop_first(b"route")
        return nxt, own > 0

    def in_dialog(self, msg, st, untrusted=False):
        core = self.core
        if b"route" not in msg.names:
            core.reply(st, 404, b"Not Here")
            return
        nxt, popped = self._pop_own_routes(msg)
        if not popped:
            core.reply(st, 404, b"Not Here")
            return
        method = msg.method
        if method == b"BYE":
            core.accounting.bye(msg.call_id, msg)
        target = nxt if nxt is not None else core.uri(msg.uri)
        if nxt is None and core.is_myself(target):
            core.reply(st, 404, b"Not Here")  # would loop back to us until Max-Forwards runs out
            return
        msg.decrement_max_forwards(10)
        if method == b"INVITE":
            core.reply(st, 100, b"Trying")
        st.record_route = method in (b"INVITE", b"SUBSCRIBE")
        self._prepare(st, msg)
        core.resolve_target(target, untrusted, partial(self._relay_to, st))

    def _relay_to(self, st, proto, addr, refusal):
        """Forward a relayed request once its next hop is known (at once, or after DNS)."""
        core = self.core
        if st.final_code is not None:
            return
        if refusal is not None:
            code, reason = refusal
            if self.refusals.allow(core.loop.time()):
                log.warning(
                    "not relaying %s call-id=%s from %s:%s: %d %s",
                    _text(st.method),
                    _text(st.call_id),
                    st.addr[0],
                    st.addr[1],
                    code,
                    _text(reason),
                )
            core.reply(st, code, reason, extra=core.view.retry_after if code == 503 else ())
            return
        if st.canceled:
            core.reply(st, 487, b"Request Terminated")
            return
        if self.log_debug:
            log.debug("relay %s call-id=%s to %s:%s:%s", _text(st.method), _text(st.call_id), proto, *addr)
        core.start_branch(st, None, proto, addr)

    def in_dialog_ack(self, msg, listener, addr):
        """ACK for a 2xx: its own transaction, forwarded statelessly along the Route set."""
        core = self.core
        if msg.to_tag is None or b"route" not in msg.names:
            return
        untrusted = not core.view.is_trusted(addr[0])
        if untrusted and not self.signed(msg):
            if self.refusals.allow(core.loop.time()):
                log.warning(
                    "dropped ACK from untrusted %s:%s without our signed Route call-id=%s", addr[0], addr[1], _text(msg.call_id)
                )
            return
        nxt, popped = self._pop_own_routes(msg)
        if not popped:
            return
        target = nxt if nxt is not None else core.uri(msg.uri)
        if msg.max_forwards == 0:
            return
        msg.decrement_max_forwards(10)
        core.resolve_target(target, untrusted, partial(self._send_ack, msg, listener))

    def _send_ack(self, msg, listener, proto, dest, refusal):
        if refusal is not None:
            return
        core = self.core
        lis = core.listener_for(proto, listener)
        # stateless branch: derived from the incoming one so a retransmitted ACK gets the same
        branch = _STATELESS + b"%x" % zlib.crc32(msg.via.raw)
        data = msg.start_line() + b"\r\n" + lis.via_prefix + branch + b"\r\n" + msg.head_bytes() + msg.body
        core.send(proto, dest, data, lis)

    # -- out-of-dialog -------------------------------------------------------

    def out_of_dialog(self, msg, st, addr):
        """Only trusted sources get here: on_request refuses the others, statelessly."""
        core = self.core
        method = msg.method
        if method == b"REGISTER":
            core.reply(st, 404, b"No registrar")
            return
        nxt, _ = self._pop_own_routes(msg)
        ruri = core.uri(msg.uri)
        to_us = core.is_myself(ruri)
        if method == b"OPTIONS" and to_us and nxt is None:
            core.reply(st, 200, b"OK", extra=(b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",))
            return
        msg.decrement_max_forwards(10)
        st.record_route = method in (b"INVITE", b"SUBSCRIBE")
        if method == b"INVITE" or (to_us and nxt is None):
            self.dispatch(msg, st, addr)
            return
        # route(RELAY): toward the next Route, else the R-URI
        self._prepare(st, msg)
        core.resolve_target(nxt if nxt is not None else ruri, False, partial(self._relay_to, st))

    def _prepare(self, st, msg):
        st.template = msg
        st.template_start = msg.start_line() + b"\r\n"

    # -- dispatch ------------------------------------------------------------

    def dispatch(self, msg, st, addr):
        core = self.core
        view = core.view
        is_invite = msg.method == b"INVITE"
        acc = core.accounting
        setid, st.carrier = view.route_for(addr[0])
        if is_invite:
            core.carriers.arrived(st.carrier, st.created)
            acc.invite()
            if core.invites_full():
                acc.shed()
                if self.log_debug:
                    log.debug("shed call-id=%s: %d pending INVITEs", _text(st.call_id), core.pending_invites)
                core.reply(st, 503, b"Service Unavailable", extra=core.view.retry_after)
                return
            core.invite_pending(st)
        dset = view.table.sets.get(setid) if setid is not None else None
        order = ()
        if dset is not None:
            now = time.time()
            usable = [d for d in dset.destinations if core.is_usable(d, now)]
            if is_invite and len(usable) > 1 and core.silence.unanswered:
                usable = core.prefer_answering(usable)
            if usable:
                order = selection.order(
                    dset.algorithm,
                    usable,
                    self._hash_key(dset.algorithm, msg),
                    core.set_state(setid),
                    core.accounting.loads() if dset.algorithm == 10 else None,
                    self._rtts(usable) if dset.algorithm == 13 else None,
                    dset.destinations,
                    dset.load_mode,
                )
        if not order:
            log.error(
                "no usable destination in set %s for %s call-id=%s from %s",
                setid,
                _text(msg.method),
                _text(st.call_id),
                _text(msg.uri_of(b"from")),
            )
            if is_invite:
                acc.sent_503()
            core.reply(st, 503, b"Service Unavailable", extra=core.view.retry_after)
            return
        st.dispatch = True
        st.dset = dset
        st.order = order
        self._prepare(st, msg)
        if self.log_debug:
            log.debug("dispatching %s call-id=%s set=%s to %s", _text(msg.method), _text(st.call_id), setid, order[0].uri)
        self.next_branch(st)
        if is_invite and st.final_code is None:
            # after the INVITE left, not before: one send (and the caller's wake-up) less between
            # the INVITE reaching us and reaching the server; the caller's retransmission timer
            # (500 ms) does not notice 50 us
            core.reply(st, 100, b"Trying")

    def _hash_key(self, algorithm, msg):
        if algorithm == 0:
            return msg.call_id
        if algorithm == 1:
            return msg.uri_of(b"from") or b""
        if algorithm == 2:
            return msg.uri_of(b"to") or b""
        if algorithm == 3:
            return msg.uri
        return b""

    def _rtts(self, usable):
        health = self.core.health
        return {d.id: health[d.id].rtt_ms for d in usable if d.id in health}

    def next_branch(self, st):
        core = self.core
        view = core.view
        order = st.order
        if st.hops:  # the current destination's next DNS address (SRV target)
            hop = st.hops.pop(0)
            return core.start_branch(st, order[st.tried - 1], hop.transport, hop.addr)
        while st.tried < len(order):
            d = order[st.tried]
            st.tried += 1
            if st.tried > 1 and not core.is_usable(d):
                continue
            addr = view.addr_of.get(d.id)
            if addr is None:
                continue  # its host name has never resolved
            proto = d.transport
            hops = view.hops_of.get(d.id)
            if hops is not None:
                hops = core.dns_hops.order(hops)
                st.hops = hops[1:]
                proto, addr = hops[0].transport, hops[0].addr
            if st.method == b"INVITE":
                core.accounting.branch_started(st, d)
            return core.start_branch(st, d, proto, addr)
        return None

    def _has_next(self, st):
        core = self.core
        return bool(st.hops) or any(core.is_usable(d) for d in st.order[st.tried :])

    # -- failure route -------------------------------------------------------

    def failure(self, st, ct, code, resp, no_answer=False):
        core = self.core
        if st.canceled:
            if resp is not None:
                core.relay(st, resp, final=True)
            else:
                core.reply(st, 487, b"Request Terminated")
            return
        timeout = resp is None
        if st.dispatch and not no_answer and (timeout or code in st.dset.failover_codes):
            dest = ct.dest
            why = "timeout" if timeout else f"replied {code}"
            if st.hops:
                core.dns_hops.failed(ct, why)
            else:
                core.mark_suspect(dest, code, why, st.call_id)
            old = dest
            if self.next_branch(st) is not None:
                core.accounting.failover(old)
                log.warning("failover call-id=%s from %s (%s) to %s", _text(st.call_id), old.uri, why, st.branches[-1].dest.uri)
                return
            log.error("all destinations exhausted for call-id=%s, last %s %s", _text(st.call_id), old.uri, why)
        if resp is not None:
            core.relay(st, resp, final=True)
        else:
            core.reply(st, 408, b"Request Timeout")

    def branch_dead(self, ct, reason, certain=False, mark=True, cancel=True):
        """First sign of death (ICMP, refused connect, no provisional): fail over at once.
        `mark`: mark the destination suspect (not for a silence the core only suspects);
        `cancel`: False when the server is gone, so a CANCEL would reach nobody."""
        core = self.core
        st = ct.server
        ct.why = reason
        if mark and st.hops and st.final_code is None and not st.canceled:
            core.dns_hops.failed(ct, reason)
        elif mark and ct.dest is not None:
            core.mark_suspect(ct.dest, None, reason, st.call_id)
        if st.final_code is not None:
            core.give_up_branch(ct, cancel)
            return
        if st.canceled:
            core.give_up_branch(ct, cancel)
            core.reply(st, 487, b"Request Terminated")
            return
        if not st.dispatch or not self._has_next(st):
            if certain:
                core.give_up_branch(ct, cancel)
                core.reply(st, 503, b"Service Unavailable", extra=core.view.retry_after)
                if st.dispatch:
                    core.accounting.sent_503()
            # a silent server might still answer: fr_timer decides when nothing else is left
            return
        core.give_up_branch(ct, cancel)
        old = ct.dest
        self.next_branch(st)
        core.accounting.failover(old)
        log.warning("failover call-id=%s from %s (%s) to %s", _text(st.call_id), old.uri, reason, st.branches[-1].dest.uri)

    def answered(self, st, ct):
        if self.log_debug:
            log.debug("answered call-id=%s by %s", _text(st.call_id), ct.dest.uri if ct.dest else "-")

    def orphan_answer(self, ct, resp):
        """A 2xx from a branch that lost (the caller has its answer): ACK and BYE it ourselves."""
        core = self.core
        routes = []
        for rr in reversed(resp.get_all(b"record-route")):
            uri = core.uri(name_addr(rr, "Record-Route")[0])
            if not core.is_myself(uri):
                routes.append(rr)
        target_raw = name_addr(routes[0], "Route")[0] if routes else resp.uri_of(b"contact")
        if target_raw is None:
            log.warning("late 2xx without Contact call-id=%s: cannot BYE it", _text(resp.call_id))
            return

        def send(proto, addr, refusal):
            if refusal is not None:
                log.warning(
                    "late 2xx call-id=%s: cannot ACK and BYE it (%d %s)", _text(resp.call_id), refusal[0], _text(refusal[1])
                )
                return
            lis = core.listener_for(proto)
            num = resp.cseq[0]
            ua = core.view.server
            ack = build_dialog_request(b"ACK", resp, lis.via_prefix + new_branch(), num, routes, ua)
            bye = build_dialog_request(b"BYE", resp, lis.via_prefix + new_branch(), num + 1, routes, ua)
            ct.ack_data = ack
            core.send(proto, addr, ack, lis)
            core.send(proto, addr, bye, lis)
            log.warning(
                "late 2xx from %s call-id=%s after the call was settled: sent ACK and BYE",
                ct.dest.uri if ct.dest else f"{addr[0]}:{addr[1]}",
                _text(resp.call_id),
            )

        core.resolve_target(core.uri(target_raw), False, send)

    # -- odd input -----------------------------------------------------------

    def stray_response(self, msg, addr):
        """A response no transaction knows: forward statelessly if the top Via is ours (RFC 3261 §16.11)."""
        core = self.core
        via = msg.via
        if (via.host, via.port or 5060) not in core.my_addrs or not via.branch or not via.branch.startswith(b"z9hG4bK"):
            self._drop_stray(msg, addr)
            return
        ours = is_own_branch(via.branch)
        msg.pop_first(b"via")
        if b"via" not in msg.names:
            return  # answer to a request we originated (a BYE we sent): nothing to do
        nv = msg.via
        host = (nv.received or nv.host.encode()).decode("latin-1")
        ip = literal(host)
        rport = nv.rport
        if rport:
            # anyone's Via: "abc" or thousands of digits made int() raise ValueError; past 65535
            # uvloop sends to the port mod 65536 (past the hop checks: 65536 + 5060 is us) and
            # asyncio's loop closes the listener (OverflowError); 0 is no port
            if len(rport) > 5 or not rport.isdigit() or not 0 < int(rport) < 65536:
                raise SipSyntaxError(f"rport must be 1-65535, got {rport[:10]!r}", header="Via")
            port = int(rport)
        else:
            port = nv.port or 5060
        proto = nv.transport.lower()
        if ip is None or core.hop_refusal(proto, ip, port) is not None:
            return  # a name (we resolve nothing for a response) or an address we never send to
        # Anyone can write our address into a Via. A branch this process made is ours; another
        # node's (a 200 retransmitted to the node that took a dead node's address) is passed
        # on only to a trusted address, so a forged response cannot aim us at anyone else.
        if not ours and not core.view.is_trusted(ip):
            self._drop_stray(msg, addr)
            return
        core.send(proto, (ip, port), msg.to_bytes(), core.listener_for(proto))

    def names_another_worker(self, via):
        """A response to a request of another worker of this proxy: our host, not our port. (Each
        worker draws its own branch prefix, so the branch cannot tell; worker 0 drops what it
        does not know, as any worker does.)"""
        if not via.branch or not via.branch.startswith(b"z9hG4bK"):
            return False
        return any(host == via.host for host, _ in self.core.my_addrs)

    def _drop_stray(self, msg, addr):
        if self.refusals.allow(self.core.loop.time()):
            log.warning("dropped a stray %s response from %s:%s call-id=%s", msg.code, addr[0], addr[1], _text(msg.call_id))

    def malformed(self, data, exc, listener, addr, conn, msg=None):
        # a junk flood must not turn into a log flood
        self.malformed_logs.warning(self.core.loop.time(), "malformed SIP from %s:%s: %s", addr[0], addr[1], exc)
        if msg is None:
            msg = _salvage(data)
        if msg is None or msg.method is None or msg.method == b"ACK":
            return
        try:
            via = msg.via
        except SipSyntaxError:
            return  # no Via we can read: nowhere to send the 400
        phrase = b"Bad Request (" + _phrase(str(exc)) + b")"
        data = response_bytes(msg, 400, phrase, to_tag=b"400", server=self.core.view.server)
        if conn is not None:
            conn.send(data)
        else:
            port = addr[1] if via.rport is not None else (via.port or 5060)
            listener.send(data, (addr[0], port))


def _passed_us(msg):
    names = msg.names
    values = msg.values
    if names.count(b"via") < 2 and b"," not in values[names.index(b"via")]:
        return False  # only the sender's own Via: the usual case, decided without a scan
    for i, name in enumerate(names):
        if name == b"via" and BRANCH_PREFIX in values[i]:
            return True
    return False


def _phrase(text):
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:100].encode("ascii")


def _salvage(data):
    """Enough of an unparseable request to answer 400: request line plus Via/From/To/Call-ID/CSeq."""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)]
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"SIP/2.0" or not parts[0].isalpha():
        return None
    names, keep, values = [], [], []
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0:
            continue
        raw = line[:colon].strip().lower()
        name = COMPACT.get(raw, raw)
        if name in _SALVAGE:
            try:
                canonical_name(line[:colon])
            except SipSyntaxError:
                continue
            names.append(name)
            keep.append(line)
            values.append(line[colon + 1 :].strip())
    if b"via" not in names:
        return None
    return SipMessage(parts[0], parts[1], None, None, names, keep, values, b"")
