"""Probe many destinations at once with asyncio: one request each, one outcome each.

No Django here and no state: the caller gives targets and settings, and gets back
what every destination answered (or that it did not) and how fast. UDP probes of
one round share one socket per local address and are matched to replies by the
Via branch; TCP and TLS probes open a connection each (bounded in number). TLS probes verify
the server as the proxy does (LBPANEL_TLS_CA, LBPANEL_TLS_VERIFY; proxy.tls), so a server whose
certificate the proxy would refuse is reported with the verification's reason, not as up.

Health is a server's, not a row's: `by_server` groups the targets by the SIP endpoint
they reach (transport, resolved host, port), and `probe_servers` sends one request
per server and gives its outcome to every row of it.

Host names resolve as the proxy resolves them (RFC 3263, lbcore.sipdns, SIP_DNS_SERVERS): a name
with several SRV targets is probed at each, and is as healthy as the best of them, in SRV order
(the proxy fails a call over along the same list). Answers are kept for their TTL in this
process (probes.dnscache), and a name that stops resolving is probed at its last addresses.
"""

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass, replace

from probes import dnscache
from proxy.tls import handshake_failure, prober_client_context
from sip.errors import SipSyntaxError
from sip.framing import StreamFramer
from sip.options import build_request, new_call_id, new_tag, parse_reply
from sip.transaction import T1, T2, new_branch
from sip.uri import parse_uri

log = logging.getLogger(__name__)

MIN_RETRANSMIT_WINDOW = 0.05  # no retransmission when less than this would be left to answer it
SEND_BATCH = 100  # yield to the loop between batches so replies are read while we send
TCP_CONCURRENCY = 256  # open connections at once; keeps a big round under the fd limit
UDP_RCVBUF = 4 * 1024 * 1024

TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    uri: str
    host: str
    port: int
    transport: str  # "udp", "tcp" or "tls"
    # The destination's ping_from and socket attributes (dispatcher.ping_attrs): its probe's From
    # URI, and the local (ip, port) it leaves from (TCP: the address; the port is the kernel's).
    from_uri: str | None = None
    source: tuple | None = None
    hops: tuple = ()  # lbcore.sipdns.Hop: where its host name leads, when it leads to several


@dataclass(frozen=True, slots=True)
class Outcome:
    id: int
    code: int | None  # the final reply's code; None when there was no reply
    status: str  # "200 OK", "503 Service Unavailable", "timeout", "connection refused", ...
    rtt_ms: float | None
    at: float  # epoch seconds when the probe was sent

    @property
    def answered(self):
        return self.code is not None


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    from_uri: str = "sip:dispatcher@localhost"
    method: str = "OPTIONS"
    timeout: float = 2.0
    user_agent: str = "lbpanel"


async def probe_all(targets, config):
    """Probe every target concurrently; return one Outcome per target, in target order."""
    located = await _resolve(targets, config.timeout)
    outcomes = {}
    each = []  # one target per address: (target id, rank) as its id
    for target in targets:
        hops = target.hops or located[target.uri]
        if isinstance(hops, str):
            outcomes[target.id] = Outcome(target.id, None, f"cannot resolve host ({hops})", None, time.time())
            continue
        each += [replace(target, id=(target.id, i), host=h.ip, port=h.port, transport=h.transport) for i, h in enumerate(hops)]
    by_target = {}
    for outcome in await _probe_addresses(each, config):
        by_target.setdefault(outcome.id[0], []).append(outcome)
    for target_id, tries in by_target.items():
        tries.sort(key=lambda o: o.id[1])
        outcomes[target_id] = replace(_best(tries), id=target_id)
    return [outcomes[t.id] for t in targets]


def _best(tries):
    """The outcome a name with several addresses reports: the first (in SRV order) that answered below
    500, else the first that answered, else the first address's silence."""
    return next((o for o in tries if o.code is not None and o.code < 500), None) or next(
        (o for o in tries if o.answered), tries[0]
    )


async def _probe_addresses(targets, config):
    """Outcomes of targets whose host is an IP literal, in any order."""
    loop = asyncio.get_running_loop()
    addresses = {t.host: t.host for t in targets}
    outcomes = {}
    udp = [t for t in targets if t.transport == "udp"]
    tcp = [t for t in targets if t.transport in ("tcp", "tls")]
    jobs = []
    if udp:
        jobs.append(_UdpRound(loop, config).run(udp, addresses))
    if tcp:
        sem = asyncio.Semaphore(TCP_CONCURRENCY)
        jobs.extend(_probe_tcp(t, addresses[t.host], config, sem) for t in tcp)
    for result in await asyncio.gather(*jobs):
        for outcome in result if isinstance(result, list) else [result]:
            outcomes[outcome.id] = outcome
    return list(outcomes.values())


async def by_server(targets, timeout):
    """server key -> its targets, lowest id first: one key per SIP endpoint (transport, resolved
    host, port), so an Asterisk box listed in several sets, by name in one and by address in
    another, is one server. A host that does not resolve keeps its name in the key (its probe
    then says it cannot resolve)."""
    located = await _resolve(targets, timeout)
    groups = {}
    for target in sorted(targets, key=lambda t: t.id):
        hops = located[target.uri]
        if not isinstance(hops, str):
            # resolved once: probe_servers looks nothing up again
            first = hops[0]
            target = replace(target, host=first.ip, port=first.port, transport=first.transport, hops=hops)
        key = server_key(target.transport, target.host, target.port)
        if target.from_uri or target.source:
            # Rows that ask for their own From or socket get their own probe, as in Kamailio
            # (which probes every row): one probe cannot carry two Froms.
            key += f"|from={target.from_uri or ''}|src={':'.join(map(str, target.source or ()))}"
        groups.setdefault(key, []).append(target)
    return groups


def server_key(transport, host, port):
    return f"{transport}:{host}:{port}"


async def probe_servers(groups, config):
    """One probe per server (`by_server`'s groups), with its first row's Request-URI; one Outcome
    per row, each row's the server's."""
    groups = list(groups.values())
    outcomes = await probe_all([rows[0] for rows in groups], config)
    return [replace(outcome, id=row.id) for outcome, rows in zip(outcomes, groups) for row in rows]


async def _resolve(targets, timeout):
    """uri -> its addresses (Hop, best first), or why it has none (str). An IP literal needs no lookup."""
    firsts = {}
    for target in targets:
        firsts.setdefault(target.uri, target)
    found = await asyncio.gather(*(dnscache.locate(t.uri, t.host, t.port, t.transport, timeout) for t in firsts.values()))
    return dict(zip(firsts, found, strict=True))


def _local_ip_for(ip):
    """The source address the kernel would use towards `ip` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return s.getsockname()[0]


def probe_request(config, target, transport, local_ip, local_port):
    """(branch, Call-ID, bytes) of one OPTIONS (or the configured method) to `target`."""
    branch, call_id = new_branch().decode(), new_call_id()
    data = build_request(
        target.uri,
        from_uri=target.from_uri or config.from_uri,
        transport=transport,
        local_host=local_ip,
        local_port=local_port,
        branch=branch,
        call_id=call_id,
        from_tag=new_tag(),
        method=config.method,
        user_agent=config.user_agent,
    )
    return branch, call_id, data


class _UdpReplies(asyncio.DatagramProtocol):
    def __init__(self, pending):
        self.pending = pending  # branch -> (future, call_id)

    def datagram_received(self, data, addr):
        try:
            reply = parse_reply(data)
        except SipSyntaxError as exc:
            log.info("probe reply dropped from=%s:%s error=%s", addr[0], addr[1], exc)
            return
        entry = self.pending.get(reply.branch)
        if entry is None:
            return  # a late reply to a probe that already timed out, or a retransmission
        future, call_id = entry
        if reply.call_id != call_id or not reply.is_final or future.done():
            return
        future.set_result((reply, time.perf_counter()))

    def error_received(self, exc):
        # ICMP errors arrive here only on some platforms; the probe then times out.
        log.debug("probe socket error %s", exc)


class _UdpRound:
    """One socket per local address for the whole round; replies found by branch."""

    def __init__(self, loop, config):
        self.loop = loop
        self.config = config
        self.pending = {}
        self.sockets = {}  # (local ip, port asked, 0 = any) -> (transport, port)

    async def _socket(self, local_ip, local_port=0):
        if (local_ip, local_port) not in self.sockets:
            family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
            except OSError:
                pass
            try:
                sock.bind((local_ip, local_port))
            except OSError:
                sock.close()
                raise
            transport, _ = await self.loop.create_datagram_endpoint(lambda: _UdpReplies(self.pending), sock=sock)
            self.sockets[(local_ip, local_port)] = (transport, sock.getsockname()[1])
        return self.sockets[(local_ip, local_port)]

    async def _source_socket(self, target):
        """The socket of a target with a `socket` attribute, or an Outcome saying why it cannot be had."""
        ip, port = target.source
        try:
            return await self._socket(ip, port)
        except OSError as exc:
            why = f"cannot send from socket udp:{ip}:{port}: {exc.strerror or exc}"
            log.warning("probe id=%s uri=%s %s", target.id, target.uri, why)
            return Outcome(target.id, None, why, None, time.time())

    async def run(self, targets, addresses):
        local_ips, no_route = {}, {}
        tasks, unroutable = [], []
        try:
            for n, target in enumerate(targets):
                ip = addresses[target.host]
                if ip not in local_ips and ip not in no_route:
                    try:
                        local_ips[ip] = _local_ip_for(ip)
                    except OSError as exc:  # no route to that network from this host
                        no_route[ip] = exc.strerror or str(exc)
                        log.warning("probe cannot reach %s: %s", ip, no_route[ip])
                if target.source:
                    got = await self._source_socket(target)
                    if isinstance(got, Outcome):
                        unroutable.append(got)
                        continue
                    (transport, port), local_ip = got, target.source[0]
                elif ip in no_route:
                    unroutable.append(Outcome(target.id, None, no_route[ip], None, time.time()))
                    continue
                else:
                    (transport, port), local_ip = await self._socket(local_ips[ip]), local_ips[ip]
                tasks.append(asyncio.ensure_future(self._probe(target, (ip, target.port), transport, local_ip, port)))
                if n % SEND_BATCH == SEND_BATCH - 1:
                    await asyncio.sleep(0)
            return unroutable + list(await asyncio.gather(*tasks))
        finally:
            for transport, _ in self.sockets.values():
                transport.close()

    async def _probe(self, target, addr, transport, local_ip, local_port):
        branch, call_id, data = probe_request(self.config, target, "udp", local_ip, local_port)
        future = self.loop.create_future()
        self.pending[branch] = (future, call_id)
        at = time.time()
        sent = time.perf_counter()
        deadline = sent + self.config.timeout
        wait = T1
        try:
            while True:
                try:
                    transport.sendto(data, addr)
                except OSError as exc:
                    return Outcome(target.id, None, exc.strerror or str(exc), None, at)
                # Decide before waiting whether this is the last wait: loop timers may fire a
                # hair early (uvloop rounds to milliseconds), and a clock check after the
                # wait would then resend in a tight loop until the deadline.
                remaining = deadline - time.perf_counter()
                last = remaining - wait < MIN_RETRANSMIT_WINDOW
                done, _ = await asyncio.wait({future}, timeout=max(0.0, remaining if last else wait))
                if done:
                    reply, received = future.result()
                    return Outcome(target.id, reply.code, reply.status, round((received - sent) * 1000, 3), at)
                if last:
                    return Outcome(target.id, None, TIMEOUT, None, at)
                wait = min(wait * 2, T2)
        finally:
            self.pending.pop(branch, None)


async def _probe_tcp(target, ip, config, sem):
    async with sem:
        at = time.time()
        start = time.perf_counter()
        deadline = start + config.timeout
        try:
            local_addr = (target.source[0], 0) if target.source else None
            tls = _tls_options(target) if target.transport == "tls" else {}
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, target.port, local_addr=local_addr, **tls), config.timeout
            )
        except TimeoutError:
            return Outcome(target.id, None, TIMEOUT, None, at)
        except ConnectionRefusedError:
            return Outcome(target.id, None, "connection refused", None, at)
        except ssl.SSLError as exc:
            return Outcome(target.id, None, handshake_failure(exc)[1], None, at)
        except ValueError as exc:  # the TLS CA file setting is unusable: say so, it is not the server's fault
            return Outcome(target.id, None, f"not probed over TLS: {exc}", None, at)
        except OSError as exc:
            return Outcome(target.id, None, exc.strerror or str(exc), None, at)
        try:
            local_ip, local_port = writer.get_extra_info("sockname")[:2]
            branch, call_id, data = probe_request(config, target, target.transport, local_ip, local_port)
            writer.write(data)
            sent = time.perf_counter()
            reply = await asyncio.wait_for(_read_final(reader, branch, call_id), max(0.0, deadline - time.perf_counter()))
            if reply is None:
                return Outcome(target.id, None, "connection closed", None, at)
            return Outcome(target.id, reply.code, reply.status, round((time.perf_counter() - sent) * 1000, 3), at)
        except TimeoutError:
            return Outcome(target.id, None, TIMEOUT, None, at)
        except SipSyntaxError as exc:
            log.info("probe reply unreadable id=%s uri=%s error=%s", target.id, target.uri, exc)
            return Outcome(target.id, None, f"bad reply: {exc}", None, at)
        except OSError as exc:
            return Outcome(target.id, None, exc.strerror or str(exc), None, at)
        finally:
            writer.close()


_tls_context = None


def _tls_options(target):
    """open_connection's TLS arguments: the proxy's verification, against the configured host
    name (the target's host may have been replaced by its address) or, for an IP, its IP SAN."""
    global _tls_context  # the system CA store is loaded once per process, not per probe
    if _tls_context is None:
        _tls_context = prober_client_context()
    name = parse_uri(target.uri).host if _tls_context.check_hostname else None
    return {"ssl": _tls_context, "server_hostname": name}


async def _read_final(reader, branch, call_id):
    framer = StreamFramer()  # cuts the stream as the proxy does, keepalive CRLFs included
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return None
        for data in framer.feed(chunk):
            reply = parse_reply(data)
            if reply.branch == branch and reply.call_id == call_id and reply.is_final:
                return reply
