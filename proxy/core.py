"""The proxy engine: messages in, transactions, branches, responses out.

`Proxy` owns the sockets, the transaction tables, the applied table and health, and the
timers. The request route (what the seed's kamailio.cfg decides) lives in routing.py;
this file does what tm does: forward on a branch, retransmit, time out, match responses,
relay them upstream and call the failure route.
"""

import hashlib
import ipaddress
import logging
import socket
import time
import zlib

from lbcore.contract import SUSPECT, Health
from lbcore.rules import usable
from proxy import gcpolicy
from proxy import transactions as tx
from proxy.accounting import Accounting
from proxy.calllog import CallLog
from proxy.carriers import Carriers
from proxy.dnshops import DnsHops
from proxy.dnsnames import DestinationNames
from proxy.hep import HepCapture
from proxy.logquota import LogQuota
from proxy.overload import OverloadGuard, head_received
from proxy.resolver import Resolver, address_is_here, literal
from proxy.ringwatch import RingingWatch
from proxy.selection import SetState
from proxy.silence import SilenceWatch
from proxy.timers import ExpiryQueue, TimerWheel
from proxy.transactions import ACCEPTED, CALLING, COMPLETED, PROCEEDING, ClientTxn, ServerTxn, new_branch
from proxy.transport import TcpPool, UdpDestination, pending_bytes
from proxy.view import TableView
from sip.errors import SipSyntaxError
from sip.message import parse_message
from sip.responses import response_bytes
from sip.uri import parse_uri

log = logging.getLogger("proxy")

# A timer that runs this late says more about our loop than about the peer.
LAG_TOLERANCE = 0.05
_URI_CACHE_MAX = 20000
_HOPS_MAX = 10000
# silence_cause(): why a branch missed a deadline, when not (only) the peer's fault
OUR_LOOP = "our loop is late"
UNREACHABLE = "ICMP port unreachable"
SIG_PARAM = b";lbs="
# Under --processes worker 0 holds every TCP and TLS connection, so a call with such a leg lives
# there; it names itself in its Record-Route, and the worker a later request of the dialog reaches
# by its Call-ID hands the request over on seeing this.
FIRST_WORKER_MARK = b";lbw=0"


class Proxy:
    def __init__(self, loop, node_name="proxy"):
        self.loop = loop
        self.node_name = node_name
        self.wheel = TimerWheel(loop)
        self.listeners = []
        self.pool = TcpPool(self, loop)
        self.udp_dests = {}
        self.view = TableView()
        self.table_applied_at = None
        self.health = {}
        self.set_states = {}
        self.servers = {}
        self.clients = {}
        self.calling_by_addr = {}
        # INVITE branches a server answered with a provisional, by its address: if it dies while
        # they ring (ICMP), nobody would answer them before fr_inv_timer
        self.ringing_by_addr = {}
        self.pending_invites = 0
        self.server_linger = ExpiryQueue(tx.LINGER)
        self.client_linger = ExpiryQueue(tx.LINGER + 5)
        self.accounting = Accounting(self)
        self.calllog = CallLog(self, node_name)
        self.carriers = Carriers()
        self.my_addrs = set()
        self.uri_cache = {}
        self.on_suspect = []  # callables (dest, code, reason, call_id): Redis writer, probe hook
        self.resolver = Resolver(loop)
        self.names = DestinationNames(loop)  # destinations' host names (RFC 3263), refreshed at their TTLs
        self.names.on_change = self.reapply
        self.dns_hops = DnsHops(self)  # their addresses' order per call, and which failed
        self.rr_prefixes = ()
        self.my_ports = {}  # port -> hosts we listen on with it ("0.0.0.0" = every local address)
        self._targets = {}  # (IP-literal host, port, proto) -> (addr or None, refusal or None)
        self._hops = {}  # (proto, ip, port) -> None when we may send there, else (code, reason)
        self._local_ips = {}
        self.crash_logs = LogQuota(5, log, "failures on messages")
        self.by_source = {}  # untrusted source ip -> its live server transactions
        from proxy.routing import Router  # noqa: PLC0415 (routing imports core helpers)

        self.router = Router(self)
        self.sweeper = None
        self.gc = gcpolicy.Scheduler()
        self.overload = OverloadGuard(self.wheel, time.time, busy=lambda: bool(self.servers or self.clients))
        self.hep = None  # the SIP capture sender (proxy.hep) while hep_destination is set
        self.capture = HepCapture(self)
        self.silence = SilenceWatch()
        self.ringwatch = RingingWatch()
        self.steering = None  # with --processes: how calls reach this worker (set by proxy.server)
        # with --processes, on workers other than 0: hands (data, addr) to worker 0, which holds the
        # TCP and TLS connections (proxy.sharding); None where this process holds them itself
        self.stream_owner = None
        self.rr_mark = b""  # FIRST_WORKER_MARK in worker 0 of several

    # -- setup ---------------------------------------------------------------

    def add_listener(self, listener):
        self.listeners.append(listener)
        if listener.proto == "udp" and listener.sock is not None:
            self.overload.watch(listener.sock)
        self.my_addrs.add((listener.advertised, listener.advertised_port))
        self.my_ports.setdefault(listener.port, set()).add(listener.host)
        self._targets.clear()
        self.rr_prefixes = tuple({b"sip:" + lis.sent_by + b";" for lis in self.listeners})
        self._hops.clear()
        if listener.host in ("0.0.0.0", "::"):
            self.my_addrs.add(("127.0.0.1", listener.port))
            self.my_addrs.add(("localhost", listener.port))
        else:
            self.my_addrs.add((listener.host, listener.port))
        if listener.advertised == "127.0.0.1":
            self.my_addrs.add(("localhost", listener.advertised_port))

    def listener_for(self, proto, like=None):
        if like is not None and like.proto == proto:
            return like
        for lis in self.listeners:
            if lis.proto == proto:
                return lis
        return self.listeners[0] if self.listeners else None

    def start(self):
        self.wheel.start()
        self.overload.start()
        self.sweeper = self.loop.call_later(1.0, self._sweep)

    def stop(self):
        self.wheel.stop()
        self.overload.stop()
        if self.sweeper is not None:
            self.sweeper.cancel()
        for d in self.udp_dests.values():
            d.close()
        self.udp_dests.clear()
        self.pool.close()
        self.capture.close()
        self.resolver.close()

    def apply_table(self, table, resolved=None):
        """Swap in a new table; open connected UDP sockets for new destinations. Host names have
        the addresses `self.names` last found (the follower looks a new table's up first)."""
        view = TableView(table, resolved, self.dns_hops.not_local(table))
        for did, (ip, port) in list(view.addr_of.items()):
            if self.is_local(ip, port):
                # a destination that is this proxy would bounce every call through us again
                log.error("destination %s is this proxy's own address %s:%s: not used", did, ip, port)
                del view.addr_of[did]
        self.pool.note_tls_destinations(table, view)
        self.view = view
        # measured against the table's published_at: how long a change took to reach this node
        self.table_applied_at = time.time()
        self.overload.high = view.overload_lag
        self.capture.apply(table.settings)
        udp = self.listener_for("udp")
        wanted = set()
        if udp is not None and udp.proto == "udp":
            for dset in table.sets.values():
                for d in dset.destinations:
                    hops = view.hops_of.get(d.id)
                    if hops is not None:
                        wanted.update(h.addr for h in hops if h.transport == "udp")
                    elif d.transport == "udp" and d.id in view.addr_of:
                        wanted.add(view.addr_of[d.id])
            for addr in wanted - set(self.udp_dests):
                try:
                    self.udp_dests[addr] = UdpDestination(self, self.loop, addr, udp)
                except OSError as exc:
                    log.warning("cannot open udp socket to %s:%s: %s", addr[0], addr[1], exc)
        for addr in set(self.udp_dests) - wanted:
            self.udp_dests.pop(addr).close()
        for setid in list(self.set_states):
            if setid not in table.sets:
                del self.set_states[setid]
        log.info("table version %s applied (%d sets)", table.version, len(table.sets))

    def reapply(self):
        """A destination's name now leads elsewhere: the same table, with the new addresses. Not a
        new table: table_applied_at (how long the table took to reach us) stays."""
        applied = self.table_applied_at
        log.info("DNS changed: routing table version %s again", self.view.version)
        self.apply_table(self.view.table)
        self.table_applied_at = applied

    def set_health(self, dest_id, health):
        self.health[dest_id] = health

    def set_state(self, setid):
        st = self.set_states.get(setid)
        if st is None:
            st = self.set_states[setid] = SetState()
        return st

    def is_usable(self, dest, now=None):
        addr = self.view.addr_of.get(dest.id)
        if addr is None:
            return False  # its host name does not resolve
        if self.silence.quiet and addr in self.silence.quiet:
            return False  # silent right now (proxy.silence)
        return usable(dest, self.health.get(dest.id), self.view.suspect_hold, now)

    def prefer_answering(self, usable):
        """Leave out the servers piling up unanswered INVITEs (proxy.silence), unless all are."""
        addr_of = self.view.addr_of
        unanswered = self.silence.unanswered
        limit = self.silence.pile_limit
        for d in usable:  # the usual case, nothing near the bound, with no call but dict lookups
            pile = unanswered.get(addr_of.get(d.id))
            if pile is not None and pile[0] >= limit:
                break
        else:
            return usable
        now = self.loop.time()
        trying_timeout = self.view.trying_timeout
        piling = self.silence.piling
        answering = [d for d in usable if not piling(addr_of.get(d.id), now, trying_timeout)]
        return answering or usable

    # -- URIs ----------------------------------------------------------------

    def uri(self, raw):
        u = self.uri_cache.get(raw)
        if u is None:
            u = parse_uri(raw.decode("latin-1"))
            if len(self.uri_cache) > _URI_CACHE_MAX:
                self.uri_cache.clear()
            self.uri_cache[raw] = u
        return u

    def names_us(self, raw):
        """is_myself for URI bytes; our own Record-Route (unique per dialog, signed) is
        recognised by its prefix, so it never churns the URI cache."""
        for prefix in self.rr_prefixes:
            if raw.startswith(prefix):
                return True
        return self.is_myself(self.uri(raw))

    def is_myself(self, u):
        """Does this URI name us, in any spelling of our address (RFC 3261 §16.4)?"""
        port = u.effective_port
        if (u.host, port) in self.my_addrs:
            return True
        if port not in self.my_ports:
            return False
        ip = literal(u.host)
        return ip is not None and self.is_local(ip, port)

    def is_local(self, ip, port):
        """Would a packet to ip:port reach one of our own listeners?"""
        hosts = self.my_ports.get(port)
        if not hosts:
            return False
        if ip in hosts:
            return True
        if "0.0.0.0" in hosts or "::" in hosts or "" in hosts:
            return self._local_ip(ip)
        return False

    def _local_ip(self, ip):
        local = self._local_ips.get(ip)
        if local is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return False
            if addr.is_loopback or addr.is_unspecified:
                local = True
            else:
                # None: ip_nonlocal_bind is on and a bind proves nothing; then only a loop
                # through us (our Via in the request) is caught, never a false 482
                local = address_is_here(ip) is True
            if len(self._local_ips) > _HOPS_MAX:
                self._local_ips.clear()
            self._local_ips[ip] = local
        return local

    def resolve_target(self, u, untrusted, done):
        """RFC 3263 without SRV, never blocking: done(proto, (ip, port), None) or
        done(proto, None, (code, reason)) when we will not or cannot send there."""
        proto = u.transport
        port = u.effective_port
        hit = self._targets.get((u.host, port, proto))
        if hit is not None:  # an IP literal seen before: no parsing, no closure
            done(proto, hit[0], hit[1])
            return
        self._resolve_target(u, proto, port, untrusted, done)

    def _resolve_target(self, u, proto, port, untrusted, done):
        # apart from resolve_target: a function with a closure pays for its cells on every call

        def resolved(ip, why):
            if ip is None:
                if why == "busy":
                    done(proto, None, (503, b"Service Unavailable"))
                else:
                    done(proto, None, (478, b"Unresolvable destination"))
                return
            refusal = self.hop_refusal(proto, ip, port)
            addr = None if refusal else (ip, port)
            if addr is not None and proto == "tls":
                self.pool.name_tls(addr, u.host)
            if literal_host:
                if len(self._targets) > _HOPS_MAX:
                    self._targets.clear()
                self._targets[(u.host, port, proto)] = (addr, refusal)
            done(proto, addr, refusal)

        literal_host = literal(u.host) is not None

        self.resolver.resolve(u.host, untrusted, resolved)

    def hop_refusal(self, proto, ip, port):
        """None when we may send to ip:port, else the (code, reason) to answer instead."""
        key = (proto, ip, port)
        try:
            return self._hops[key]
        except KeyError:
            pass
        refusal = None
        addr = ipaddress.ip_address(ip)
        if addr.is_multicast or addr.is_unspecified or ip == "255.255.255.255":
            refusal = (403, b"Forbidden next hop")
        elif self.is_local(ip, port):
            # ourselves under another name (0x7f000001, 127.1, a host name): forwarding would
            # bounce the request through us until Max-Forwards runs out
            refusal = (482, b"Loop Detected")
        elif (
            addr.version == 6
            and proto == "udp"
            and not any(lis.proto == "udp" and lis.family == socket.AF_INET6 for lis in self.listeners)
        ):
            refusal = (400, b"Bad Request (no IPv6 listener for this next hop)")
        elif proto == "tls" and not any(lis.proto == "tls" for lis in self.listeners):
            refusal = (503, b"Service Unavailable (no TLS listener)")
        if len(self._hops) > _HOPS_MAX:
            self._hops.clear()
        self._hops[key] = refusal
        return refusal

    # -- dialogs -------------------------------------------------------------

    def dialog_sig(self, call_id, tag):
        """The MAC our Record-Route carries: keyed by the cluster's secret, so any node
        can check a dialog another node (or this one before a restart) set up."""
        mac = hashlib.blake2s(call_id + b"\0" + (tag or b""), key=self.view.secret, digest_size=9)
        return mac.hexdigest().encode()

    def signed_by_us(self, sig, call_id, from_tag, to_tag):
        """A request from the caller carries the INVITE's from-tag; one from the callee
        carries it as its to-tag."""
        if not sig:
            return False
        return sig == self.dialog_sig(call_id, from_tag) or sig == self.dialog_sig(call_id, to_tag)

    # -- input ---------------------------------------------------------------

    def on_message(self, data, listener, addr, conn):
        try:
            msg = parse_message(data, stream=conn is not None)
        except SipSyntaxError as exc:
            if self.hep is not None:
                self.hep.inbound(data, listener, addr, conn is not None)
            self.router.malformed(data, exc, listener, addr, conn)
            return
        except Exception:
            # a parser bug, not the sender's: dropped, and one packet that triggers it must not reach
            # the event loop's own handler, which logs a traceback for every datagram
            if self.crash_logs.allow(self.loop.time()):
                log.exception("failed to parse a message from %s:%s", addr[0], addr[1])
            return
        try:
            if self.stream_owner is not None and conn is None and self._for_first_worker(data, msg, addr):
                self.stream_owner(data, addr)  # worker 0 captures it (HEP) when it handles it
                return
            if self.hep is not None:
                self.hep.inbound(data, listener, addr, conn is not None)
            if msg.method is None:
                self.on_response(msg, addr)
            else:
                self.router.on_request(msg, listener, addr, conn)
        except SipSyntaxError as exc:
            self.router.malformed(data, exc, listener, addr, conn, msg)
        except Exception:
            # a bug, not an attack: but one packet that triggers it must not fill the disk
            if self.crash_logs.allow(self.loop.time()):
                log.exception("failed on a message from %s:%s", addr[0], addr[1])

    def _for_first_worker(self, data, msg, addr):
        """Is this for a call worker 0 holds (one with a TCP or TLS leg)? A response: its Via names
        our host but another worker's port (worker 0 sent the request from the public address and
        the peer answered there, where the kernel's hash brought it here). An in-dialog request:
        our Route entry carries worker 0's mark. A request before the dialog (the INVITE, its
        retransmissions and CANCEL, the ACK of a failure): its source's set has a TCP or TLS
        destination. Decided before the capture (HEP), so worker 0 alone captures it."""
        try:
            if msg.method is None:
                via = msg.via
                return (via.host, via.port or 5060) not in self.my_addrs and self.router.names_another_worker(via)
            if FIRST_WORKER_MARK in data:
                return self.router.first_worker_marked(msg)
            if b"route" in msg.names:
                return False
        except SipSyntaxError:
            return False  # this worker's own path answers it as malformed (and captures it)
        view = self.view
        return bool(view.stream_sets) and view.set_for(addr[0]) in view.stream_sets

    # -- sending -------------------------------------------------------------

    def send(self, proto, addr, data, listener):
        if proto == "udp":
            dest = self.udp_dests.get(addr)
            if dest is not None:
                dest.send(data)
            else:
                lis = listener if listener.proto == "udp" else self.listener_for("udp")
                lis.send(data, addr)
        else:
            self.pool.send(addr, data, listener, proto == "tls")

    def send_upstream(self, st, data):
        self.send_back(data, st.addr, st.listener, st.conn)

    def send_back(self, data, addr, listener, conn):
        """To whoever sent us a request: over its TCP connection while it lives, else by address."""
        if conn is not None:
            if not conn.closed:
                conn.send(data)
            else:
                self.pool.send(addr, data, listener, conn.tls)
        else:
            listener.send(data, addr)

    def reply(self, st, code, reason, extra=()):
        """Answer a server transaction ourselves (100, 403, 503...)."""
        if st.to_tag is None and code > 100:
            st.to_tag = b"%x" % zlib.crc32(st.key)
        data = response_bytes(st.req, code, reason, to_tag=st.to_tag, extra=extra, server=self.view.server)
        self.send_upstream(st, data)
        if code >= 200:
            self.finalize(st, code, data)
        else:
            st.last_response = data

    # -- transactions --------------------------------------------------------

    def finalize(self, st, code, data):
        """A server transaction got its final response (already sent)."""
        first = st.final_code is None
        st.final_code = code
        st.last_response = data
        if not first:
            return
        now = self.loop.time()
        if st.method == b"INVITE":
            if st.dispatch:
                self.pending_invites -= 1
                self.accounting.finished(st)
                self.calllog.setup(st, code, now)
            if st.carrier is not None:
                self.carriers.final(st.carrier, code, now - st.created, now)
        self.server_linger.add(now, st)
        if st.method == b"INVITE" and code >= 300 and st.conn is None:
            st.interval = tx.T1
            st.retrans = self.wheel.call_later(tx.T1, self._retransmit_final, st)
        for ct in st.branches:
            if ct.state in (CALLING, PROCEEDING) and code < 300:
                self.give_up_branch(ct)

    def new_server(self, key, msg, listener, addr, conn, untrusted_source=None):
        """A server transaction for a request we take on. An untrusted source counts it
        against max_per_source until it lingers out."""
        st = ServerTxn(key, msg.method, msg.call_id, msg, listener, addr, conn)
        st.created = self.loop.time()
        self.servers[key] = st
        if untrusted_source is not None:
            st.source = untrusted_source
            self.by_source[untrusted_source] = self.by_source.get(untrusted_source, 0) + 1
        return st

    def transactions_full(self):
        return len(self.servers) >= self.view.max_transactions

    def source_full(self, ip):
        """Has this untrusted address as many live transactions as it may have?"""
        return self.by_source.get(ip, 0) >= self.view.max_per_source

    def invites_full(self):
        """Are max_pending INVITEs already waiting for a final response?"""
        return self.pending_invites >= self.view.max_pending

    def invite_pending(self, st):
        """A dispatched INVITE waits for its final response: it counts against max_pending
        until finalize()."""
        self.pending_invites += 1
        st.dispatch = True

    def released(self, ip):
        n = self.by_source.get(ip, 0) - 1
        if n > 0:
            self.by_source[ip] = n
        else:
            self.by_source.pop(ip, None)

    def _retransmit_final(self, st, _late):
        if st.retrans is None:
            return
        self.send_upstream(st, st.last_response)
        st.interval = min(st.interval * 2, tx.T2)
        st.retrans = self.wheel.call_later(st.interval, self._retransmit_final, st)

    def ack_received(self, st):
        if st.retrans is not None:
            st.retrans.cancel()
            st.retrans = None

    def start_branch(self, st, dest, proto, addr):
        """Forward the server transaction's request on a new branch."""
        lis = self.listener_for(proto, st.listener)
        branch = new_branch()
        via_line = lis.via_prefix + branch
        tail = st.tails.get(lis)
        if tail is None:
            tail = self._tail(st, lis)
        data = st.template_start + via_line + b"\r\n" + tail
        ct = ClientTxn(branch, st, dest, proto, addr, data, via_line, lis)
        st.branches.append(ct)
        self.clients[branch] = ct
        view = self.view
        ct.sent_at = self.loop.time()
        if proto == "udp":
            ct.t_retrans = self.wheel.call_later(tx.T1, self._retransmit, ct)
        if ct.is_invite and st.dispatch:
            ct.t_trying = self.wheel.call_later(self.silence.deadline(addr, view.trying_timeout), self._trying_timeout, ct)
            self.silence.invite_sent(addr, ct.sent_at)
        ct.t_fr = self.wheel.call_later(view.fr_timer, self._fr_timeout, ct)
        calling = self.calling_by_addr.get(addr)
        if calling is None:
            calling = self.calling_by_addr[addr] = set()
        calling.add(ct)
        # registered before sending: a refusal reported by this very send fails it over
        self.send(proto, addr, data, lis)
        return ct

    def _tail(self, st, lis):
        req = st.template
        lines = req.lines
        if st.record_route:
            tail = self.rr_mark + SIG_PARAM + self.dialog_sig(st.call_id, req.from_tag) + b">"
            if lis is st.listener:
                rr = [st.listener.rr_line[:-1] + tail]
            else:  # RFC 5658 double Record-Route when changing transport, r2=on as Kamailio marks it
                rr = [lis.rr_line[:-1] + b";r2=on" + tail, st.listener.rr_line[:-1] + b";r2=on" + tail]
            lines = rr + lines
        tail = b"\r\n".join(lines) + b"\r\n\r\n" + req.body
        st.tails[lis] = tail
        return tail

    def _not_calling(self, ct):
        """The branch waits for nothing more from its server (or, via _ringing, only for a final)."""
        for waiting in (self.calling_by_addr, self.ringing_by_addr):
            live = waiting.get(ct.addr)
            if live is not None:
                live.discard(ct)
                if not live:
                    del waiting[ct.addr]

    def _ringing(self, ct):
        ringing = self.ringing_by_addr.get(ct.addr)
        if ringing is None:
            ringing = self.ringing_by_addr[ct.addr] = set()
        ringing.add(ct)

    def _retransmit(self, ct, _late):
        if ct.state != CALLING or ct.abandoned:
            return
        self.send(ct.proto, ct.addr, ct.data, ct.listener)
        ct.interval = min(ct.interval * 2, tx.T2) if not ct.is_invite else ct.interval * 2
        ct.t_retrans = self.wheel.call_later(ct.interval, self._retransmit, ct)

    def silence_cause(self, late, ct):
        """Why a branch passed a deadline without a reply, when it may not be the peer's fault:
        OUR_LOOP (our own processing may explain it), UNREACHABLE (an ICMP error from its
        destination waited on the socket), else None. Only looks: the caller acts."""
        if late > LAG_TOLERANCE or self.wheel.lag > LAG_TOLERANCE or self.overload.lag > LAG_TOLERANCE:
            return OUR_LOOP
        dest = self.udp_dests.get(ct.addr) if ct.proto == "udp" else None
        if dest is not None and pending_bytes(dest.sock):
            try:
                received = head_received(dest.sock)
            except ConnectionRefusedError:
                return UNREACHABLE
            # the destination's reply reached the kernel before the deadline and waits unread
            if received is not None and received < time.time() - late:
                return OUR_LOOP
        for lis in self.listeners:
            if lis.proto == "udp" and lis.sock is not None and pending_bytes(lis.sock):
                return OUR_LOOP
        return None

    def _trying_timeout(self, ct, late):
        ct.t_trying = None
        if ct.state != CALLING or ct.abandoned:
            return
        st = ct.server
        if st.final_code is not None:
            return
        view = self.view
        waited = self.loop.time() - ct.sent_at
        if waited < view.trying_timeout:
            # the silence deadline (proxy.silence): before trying_timeout, act only on a server
            # from which nothing at all came back since this INVITE left
            if (
                self.silence.silent_since(ct.addr, ct.sent_at)
                and not self._excused(ct, late)
                and self.silence.avoid(self, ct, waited)
            ):
                return
            if not ct.abandoned:
                ct.t_trying = self.wheel.call_later(view.trying_timeout - waited, self._trying_timeout, ct)
            return
        if self._excused(ct, late):
            if not ct.abandoned:
                ct.t_trying = self.wheel.call_later(max(0.05, self.view.trying_timeout / 4), self._trying_timeout, ct)
            return
        silent = self.silence.silent_since(ct.addr, ct.sent_at)
        self.router.branch_dead(ct, f"no provisional within {int(self.view.trying_timeout * 1000)} ms")
        if silent:
            self.hung(ct.addr, f"nothing heard from it for {int(waited * 1000)} ms")

    def _fr_timeout(self, ct, late):
        ct.t_fr = None
        st = ct.server
        if ct.abandoned or ct.state >= ACCEPTED:
            return
        if ct.state == CALLING and self._excused(ct, late):
            if not ct.abandoned:
                ct.t_fr = self.wheel.call_later(0.1, self._fr_timeout, ct)
            return
        # a branch that rang for fr_inv_timer without an answer is a no-answer, not a server fault
        no_answer = ct.state == PROCEEDING and ct.is_invite
        self.give_up_branch(ct)
        if st.final_code is None:
            self.router.failure(st, ct, 408, None, no_answer=no_answer)

    def _excused(self, ct, late):
        """A deadline passed without a reply: True when that is not (only) the peer's fault.
        An ICMP error found waiting fails the branch over now (it is then abandoned); a late
        loop re-arms the deadline, at most 20 times."""
        cause = self.silence_cause(late, ct)
        if cause is UNREACHABLE:
            self.on_unreachable("udp", ct.addr, cause)
            if ct.abandoned:
                return True  # failed over
        if cause is not None and ct.trying_rearms < 20:
            ct.trying_rearms += 1
            return True
        return False

    def give_up_branch(self, ct, cancel=True):
        """Stop a branch; CANCEL it when it already sent a provisional."""
        ct.stop_timers()
        self._not_calling(ct)
        if ct.ended is None:
            ct.ended = self.loop.time()
        if ct.state == PROCEEDING and cancel and ct.is_invite:
            self.send_cancel(ct)
        elif ct.state == CALLING and cancel and ct.is_invite:
            ct.cancel_pending = True
        if not ct.abandoned:
            ct.abandoned = True
            self.client_linger.add(self.loop.time(), ct)

    def send_cancel(self, ct):
        if ct.cancel_data is not None:
            return
        ct.cancel_data = tx.build_cancel(ct, self.view.server)
        self.send(ct.proto, ct.addr, ct.cancel_data, ct.listener)
        if ct.proto == "udp":
            ct.t_cancel = self.wheel.call_later(tx.T1, self._retransmit_cancel, [ct, tx.T1, 0])

    def _retransmit_cancel(self, state, _late):
        ct, interval, n = state
        if ct.t_cancel is None or n >= 6:
            return
        self.send(ct.proto, ct.addr, ct.cancel_data, ct.listener)
        interval = min(interval * 2, tx.T2)
        ct.t_cancel = self.wheel.call_later(interval, self._retransmit_cancel, [ct, interval, n + 1])

    def cancel_server(self, st):
        """The caller sent CANCEL: cancel every live branch, no failover from now on."""
        st.canceled = True
        for ct in st.branches:
            if ct.state == PROCEEDING:
                self.send_cancel(ct)
            elif ct.state == CALLING:
                ct.cancel_pending = True

    # -- responses -----------------------------------------------------------

    def on_response(self, msg, addr):
        via = msg.via
        branch = via.branch
        ct = self.clients.get(branch) if branch else None
        if ct is None:
            if self.ringwatch.by_branch and self.ringwatch.answered(self, branch, addr):
                return
            self.router.stray_response(msg, addr)
            return
        num, method = msg.cseq
        if msg.get(b"to") is None or msg.get(b"from") is None:
            # before anything changes state: an ACK or a BYE is built from these (RFC 3261 8.1.3.3)
            raise SipSyntaxError("response without To or From", header="To" if msg.get(b"to") is None else "From")
        if method == b"CANCEL":
            if ct.t_cancel is not None:
                ct.t_cancel.cancel()
                ct.t_cancel = None
            return
        code = msg.code
        st = ct.server
        if ct.dest is not None:
            self.silence.replied(ct, self.loop.time())
        if ct.is_invite:
            self._invite_response(ct, st, msg, code)
        else:
            self._non_invite_response(ct, st, msg, code)

    def _invite_response(self, ct, st, msg, code):
        if code < 200:
            if ct.state == CALLING:
                ct.state = PROCEEDING
                self._not_calling(ct)
                ct.stop_timers()
                if not ct.abandoned:
                    ct.t_fr = self.wheel.call_later(self.view.fr_inv_timer, self._fr_timeout, ct)
                    self._ringing(ct)
            elif ct.state == PROCEEDING and not ct.abandoned:
                # restart_fr_on_each_reply
                if ct.t_fr is not None:
                    ct.t_fr.cancel()
                ct.t_fr = self.wheel.call_later(self.view.fr_inv_timer, self._fr_timeout, ct)
            if ct.cancel_pending or (ct.abandoned and ct.state == PROCEEDING):
                self.send_cancel(ct)
                return
            if code == 100 or st.final_code is not None or ct.abandoned:
                return
            self.relay(st, msg, final=False)
            return
        if ct.code is None:
            ct.code = code
            ct.ended = self.loop.time()
        if code < 300:
            first = ct.state != ACCEPTED
            if first:
                ct.stop_timers()
                self._not_calling(ct)
                ct.state = ACCEPTED
                if not ct.abandoned:
                    ct.abandoned = True  # nothing more to do but linger
                    self.client_linger.add(self.loop.time(), ct)
            if st.final_code is None:
                st.winner = ct
                self.relay(st, msg, final=True)
                self.accounting.answered(st, ct, msg)
                self.router.answered(st, ct)
            elif st.winner is ct:
                self.relay(st, msg, final=True)  # 2xx retransmission: the caller may have lost it
            elif first:
                self.router.orphan_answer(ct, msg)
            return
        if ct.state in (COMPLETED, ACCEPTED):
            if ct.ack_data is not None:
                self.send(ct.proto, ct.addr, ct.ack_data, ct.listener)
            return
        was_abandoned = ct.abandoned
        ct.stop_timers()
        self._not_calling(ct)
        ct.state = COMPLETED
        ct.ack_data = tx.build_ack(ct, msg, self.view.server)
        self.send(ct.proto, ct.addr, ct.ack_data, ct.listener)
        if ct.t_cancel is not None:
            ct.t_cancel.cancel()
            ct.t_cancel = None
        if not was_abandoned:
            ct.abandoned = True
            self.client_linger.add(self.loop.time(), ct)
        if was_abandoned or st.final_code is not None:
            return
        self.router.failure(st, ct, code, msg)

    def _non_invite_response(self, ct, st, msg, code):
        if ct.state >= ACCEPTED:
            return
        if code < 200:
            if ct.state == CALLING:
                ct.state = PROCEEDING
                self._not_calling(ct)
                if ct.t_retrans is not None:
                    ct.t_retrans.cancel()
                    ct.t_retrans = None
            if st.final_code is None and not ct.abandoned and code != 100:
                self.relay(st, msg, final=False)
            return
        ct.stop_timers()
        self._not_calling(ct)
        ct.state = COMPLETED
        if not ct.abandoned:
            ct.abandoned = True
            self.client_linger.add(self.loop.time(), ct)
        if st.final_code is None:
            self.relay(st, msg, final=True)

    def relay(self, st, msg, final):
        """Send a downstream response upstream: drop our Via, keep everything else."""
        msg.pop_first(b"via")
        data = msg.to_bytes()
        self.send_upstream(st, data)
        if final:
            self.finalize(st, msg.code, data)
        else:
            st.last_response = data

    # -- deaths --------------------------------------------------------------

    def on_unreachable(self, proto, addr, reason):
        """ICMP port unreachable or a refused TCP connect: the destination is dead now."""
        calling = self.calling_by_addr.pop(addr, None)
        ringing = self.ringing_by_addr.pop(addr, None)
        dests = self.view.by_addr.get(addr, ())
        if not calling and not ringing:
            for d in dests:
                self.mark_suspect(d, None, reason, b"")
            return
        for ct in list(calling or ()):
            if ct.state == CALLING and not ct.abandoned:
                self.router.branch_dead(ct, reason, certain=True)
        # Calls it was ringing died with it (nothing listens on its port): each goes on to the
        # next server now instead of ringing on until fr_inv_timer. No CANCEL: nobody would read it.
        self._ringing_moves_on(ringing, reason, certain=True, cancel=False)

    def _ringing_moves_on(self, ringing, reason, **how):
        for ct in list(ringing or ()):
            if ct.state == PROCEEDING and ct.is_invite and not ct.abandoned:
                self.router.branch_dead(ct, f"{reason} while ringing", **how)

    def hung(self, addr, reason):
        """The server at addr is hung: nothing at all heard from it for trying_timeout while an INVITE
        waited (a live server answers anything within milliseconds). The calls it had answered 100
        or 18x just before will not be answered either; each goes on to the next server now, not
        after fr_inv_timer, with a CANCEL (a frozen server that wakes up stops ringing, and a late
        200 from it is ACKed and BYEd as any losing branch's). Kamailio's dispatcher waits them out."""
        self._ringing_moves_on(self.ringing_by_addr.get(addr), reason, mark=False)

    def mark_suspect(self, dest, code, reason, call_id):
        # A server listed in several sets (the seed's outbound and inbound sets share their
        # Asterisk boxes) is one machine: what killed it for one set killed it for all.
        addr = self.view.addr_of.get(dest.id)
        for sibling in self.view.by_addr.get(addr, ()) if addr is not None else ():
            if sibling.id != dest.id:
                self._mark_one_suspect(sibling, code, reason, call_id)
        self._mark_one_suspect(dest, code, reason, call_id)

    def _mark_one_suspect(self, dest, code, reason, call_id):
        h = self.health.get(dest.id)
        if h is not None and h.state == SUSPECT and time.time() - h.since < self.view.suspect_hold:
            return  # already marked: one Redis write and one probe per outage, not per call
        new = Health(
            state=SUSPECT,
            rtt_ms=h.rtt_ms if h else None,
            since=time.time(),
            fails=h.fails if h else 0,
            code=code,
            reason=reason,
        )
        self.health[dest.id] = new
        log.warning(
            "destination %s (%s) suspect: %s call-id=%s",
            dest.id,
            dest.uri,
            reason,
            call_id.decode("latin-1") if call_id else "-",
        )
        for hook in self.on_suspect:
            try:
                hook(dest, new)
            except Exception:
                log.exception("suspect hook failed for destination %s", dest.id)

    # -- housekeeping --------------------------------------------------------

    def _sweep(self):
        now = self.loop.time()
        servers = self.servers
        for st in self.server_linger.expire(now):
            if st.retrans is not None:
                st.retrans.cancel()
            if servers.get(st.key) is st:
                del servers[st.key]
            if st.source is not None:
                self.released(st.source)
            # break the server<->branch cycle so refcounting frees both, not the cyclic GC
            st.branches = ()
            st.winner = None
        clients = self.clients
        for ct in self.client_linger.expire(now):
            ct.stop_timers()
            self._not_calling(ct)
            if ct.t_cancel is not None:
                ct.t_cancel.cancel()
            if clients.get(ct.branch) is ct:
                del clients[ct.branch]
            ct.server = None
        self.accounting.expire(time.time())
        if self.ringing_by_addr:
            self.ringwatch.sweep(self, now)
        # the count of a flood of log lines that stopped, without waiting for the next event
        for quota in (self.crash_logs, self.router.refusals, self.router.malformed_logs):
            quota.flush(now)
        self.gc.maybe_full()
        self.sweeper = self.loop.call_later(0.25, self._sweep)
