"""Sockets: UDP listeners, one connected UDP socket per destination, TCP server and pool.

Why a connected UDP socket per destination: Linux reports an ICMP port-unreachable only
to a connected socket, and only that tells us *which* destination died. Requests to
destinations leave through it; replies still come back to the listener (our Via names
it), and anything the destination sends to the connected socket is read and handled too.

TCP faces the internet, so every connection is bounded (`TcpLimits`, from the table's
settings): inbound connections in total (held under the process file limit) and per
untrusted address, time to finish a message once it began (slowloris), idle time, bytes
queued to a peer that does not read. One periodic sweep over the connections enforces the
timeouts; the receive path only sets flags.
"""

import asyncio
import fcntl
import logging
import resource
import socket
import struct
import termios

from lbcore.contract import setting
from proxy.background import Background
from proxy.logquota import LogQuota
from proxy.overload import enable_timestamps
from proxy.tls import handshake_failure
from sip.errors import SipSyntaxError
from sip.framing import StreamFramer

log = logging.getLogger("proxy.transport")

_FIONREAD = getattr(termios, "FIONREAD", 0x541B)
_INT = struct.Struct("i")

# Refusals and forced closes are logged one line each up to this many per second, then
# counted: a flood of connections must not become a flood of log lines.
LIMIT_LOGS_PER_SECOND = 20
# Inbound TCP may use this share of RLIMIT_NOFILE; the rest is for listeners, the UDP
# sockets to destinations, outbound TCP and Redis. Past the file limit accept() fails and
# the kernel resets clients without a word in our log.
FILE_LIMIT_SHARE = 0.75
WRITE_BUFFER_MAX = 1 << 20  # bytes queued to a peer that stopped reading: then we drop it
CONNECT_QUEUE_MAX = 256  # messages held for a connection still being opened
TLS_NAMES_MAX = 10000


def pending_bytes(sock):
    """Bytes waiting in a socket's receive queue (the next datagram's size on UDP)."""
    try:
        return _INT.unpack(fcntl.ioctl(sock.fileno(), _FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _addr(sockaddr):
    return (sockaddr[0], sockaddr[1])


class Listener:
    """One local socket we accept SIP on, and how we name it in Via and Record-Route."""

    shared_port = False
    family = socket.AF_INET

    def __init__(self, proto, host, port, advertise=None):
        """`advertise`: (host, port or None), the address peers must reach us at when it is not
        the socket's own (a floating address shared by the nodes of a cluster, a NAT's outside)."""
        self.proto = proto
        self.host = host
        self.port = port
        if advertise is not None:
            self.advertised, self.advertised_port = advertise[0], advertise[1] or port
        else:
            self.advertised = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
            self.advertised_port = port
        hostpart = f"[{self.advertised}]" if ":" in self.advertised else self.advertised
        self.sent_by = f"{hostpart}:{self.advertised_port}".encode()
        self.via_prefix = b"Via: SIP/2.0/" + proto.upper().encode() + b" " + self.sent_by + b";branch="
        tparam = b"" if proto == "udp" else b";transport=" + proto.encode()
        self.rr_line = b"Record-Route: <sip:" + self.sent_by + tparam + b";lr>"
        self.transport = None
        self.sock = None

    def __repr__(self):
        return f"{self.proto}:{self.host}:{self.port}"


class UdpListener(Listener, asyncio.DatagramProtocol):
    def __init__(self, core, host, port, shared_port=True, advertise=None):
        Listener.__init__(self, "udp", host, port, advertise)
        self.core = core
        self.shared_port = shared_port
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def connection_made(self, transport):
        self.transport = transport
        self.sock = transport.get_extra_info("socket")

    def datagram_received(self, data, addr):
        self.core.on_message(data, self, _addr(addr), None)

    def error_received(self, exc):
        # unconnected socket: cannot tell which peer, so only note it
        if log.isEnabledFor(logging.DEBUG):
            log.debug("udp listener %s error %s", self, exc)

    def send(self, data, addr):
        if self.core.hep is not None:
            self.core.hep.outbound(data, self, addr, False)
        self.transport.sendto(data, addr)


class TcpListener(Listener):
    """A TCP or, with proto "tls", a TLS listener: the same connections, caps and timeouts."""

    def __init__(self, host, port, advertise=None, proto="tcp"):
        Listener.__init__(self, proto, host, port, advertise)


class UdpDestination:
    """A connected socket to one destination: sends, and hears its ICMP errors."""

    def __init__(self, core, loop, addr, listener):
        self.core = core
        self.loop = loop
        self.addr = addr
        self.listener = listener
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError:
            pass
        # Share the listener's port (SO_REUSEPORT; the kernel gives a connected socket the
        # datagrams of its own peer): requests leave from the address our Via and
        # Record-Route name, so peers that answer the source address, not the Via, still
        # reach us, also after a restart.
        if listener is not None and listener.shared_port and family == listener.family:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                self.sock.bind((listener.host, listener.port))
            except OSError as exc:
                log.warning("udp socket to %s:%s uses an ephemeral port: %s", addr[0], addr[1], exc)
                self.sock.close()
                self.sock = socket.socket(family, socket.SOCK_DGRAM)
                self.sock.setblocking(False)
        self.sock.connect(addr)
        enable_timestamps(self.sock)  # so a late timer can tell whether a reply is waiting unread
        loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, data):
        if self.core.hep is not None:
            self.core.hep.outbound(data, self.listener, self.addr, False)
        try:
            self.sock.send(data)
        except ConnectionRefusedError:
            # a pending ICMP error surfaced on send and this datagram did not leave: send it
            # again (the error is consumed), then report the death
            try:
                self.sock.send(data)
            except OSError:
                pass
            self.core.on_unreachable("udp", self.addr, "ICMP port unreachable")
            self.loop.call_soon(self._rearm)
        except BlockingIOError:
            # queue full: the transaction layer retransmits
            pass
        except OSError as exc:
            log.warning("send to udp:%s:%s failed: %s", self.addr[0], self.addr[1], exc)

    def _readable(self):
        for _ in range(64):
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self.core.on_unreachable("udp", self.addr, "ICMP port unreachable")
                # libuv stops polling an fd that reported POLLERR and uvloop does not resume
                # it: without a fresh reader, the replies of a restarted server would sit
                # unread forever and every call to it would time out.
                self.loop.call_soon(self._rearm)
                continue
            except OSError as exc:
                log.warning("udp:%s:%s read failed: %s", self.addr[0], self.addr[1], exc)
                return
            self.core.on_message(data, self.listener, self.addr, None)

    def _rearm(self):
        if self.sock.fileno() < 0:
            return  # closed meanwhile
        self.loop.remove_reader(self.sock.fileno())
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def close(self):
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()


def connection_cap(wanted, nofile=None):
    """(inbound connections allowed, True when the file limit rather than `wanted` decides)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if nofile is None else nofile
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return wanted, False
    room = max(1, int(soft * FILE_LIMIT_SHARE))
    return (room, True) if room < wanted else (wanted, False)


def raise_file_limit():
    """Soft RLIMIT_NOFILE up to the hard limit (systemd starts services at 1,024): one
    connection is one descriptor, and the inbound cap is a share of this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open file limit from %d to %d: %s", soft, target, exc)


class TcpLimits:
    """What TCP peers may hold, read from the table's settings."""

    __slots__ = ("idle", "message", "per_ip", "wanted", "max_connections", "untrusted_max", "by_file_limit", "period")

    def __init__(self, settings, nofile=None):
        self.idle = float(setting(settings, "tcp_idle_timeout_s"))
        self.message = float(setting(settings, "tcp_message_timeout_ms")) / 1000
        self.per_ip = int(setting(settings, "tcp_max_per_ip"))
        self.wanted = int(setting(settings, "tcp_max_connections"))
        self.max_connections, self.by_file_limit = connection_cap(self.wanted, nofile)
        self.untrusted_max = self.max_connections - self.max_connections // 10
        # a timeout fires at most a quarter late, and the sweep runs at most once a second
        self.period = min(1.0, max(0.05, min(self.idle, self.message) / 4))


class TcpConnection(asyncio.Protocol):
    """One SIP-over-TCP (or TLS) connection, accepted or opened by us; frames the stream."""

    def __init__(self, core, listener, peer=None, tls=None):
        self.core = core
        self.listener = listener
        self.peer = peer
        self.inbound = peer is None  # accepted by our listener, not opened by us
        self.tls = listener.proto == "tls" if tls is None else tls
        self.transport = None
        self.framer = StreamFramer()
        self.queue = []
        self.closed = False
        self.counted = False  # holds a place under the inbound caps
        self.paused = False  # the peer is not reading what we write
        self.active = False  # bytes moved since the last sweep
        self.last_active = 0.0
        self.partial_since = None  # loop time the unfinished message in the buffer began
        self.closed_why = None  # set when we close it on purpose

    def connection_made(self, transport):
        if self.peer is None:
            self.peer = _addr(transport.get_extra_info("peername"))
        # a TLS connection passed admit() at accept, before its handshake (proxy/tls_listener.py)
        if self.inbound and not self.counted and not self.core.pool.admit(self):
            self.closed = True
            self.closed_why = "refused"
            transport.abort()  # RST at once: the descriptor is free now, not after a FIN exchange
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.transport = transport
        self.core.pool.register(self)
        for data in self.queue:
            transport.write(data)
        self.queue = []

    def data_received(self, data):
        framer = self.framer
        self.active = True
        try:
            messages = framer.feed(data)
        except SipSyntaxError as exc:
            # too large, or no longer framable (Content-Length): we cannot find the next message
            self.drop("unframeable", "tcp:%s:%s unframeable stream (%s), closing", self.peer[0], self.peer[1], exc)
            return
        if framer.buf:
            if messages or self.partial_since is None:
                self.partial_since = self.core.loop.time()
        else:
            self.partial_since = None
        if framer.pings:
            framer.pings = 0
            self.transport.write(b"\r\n")
        for raw in messages:
            self.core.on_message(raw, self.listener, self.peer, self)

    def drop(self, why, fmt, *args):
        """Close at once, on purpose, with one (rate-limited) log line."""
        if self.closed_why is None:
            self.closed_why = why
            self.core.accounting.tcp_closed(why)
            self.core.pool.limit_log.warning(self.core.loop.time(), fmt, *args)
        self.closed = True
        self.transport.abort()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False

    def connection_lost(self, exc):
        self.closed = True
        self.core.pool.forget(self)
        if self.closed_why is not None:
            return  # closed by us (cap, timeout): says nothing about the peer's health
        if self.peer is not None and self.core.calling_by_addr.get(self.peer):
            # a server that crashes closes its connections: INVITEs waiting on it fail over now
            self.core.on_unreachable("tcp", self.peer, "TCP connection lost")

    def send(self, data):
        if self.core.hep is not None:
            self.core.hep.outbound(data, self.listener, self.peer, True)
        if self.transport is None:
            if len(self.queue) < CONNECT_QUEUE_MAX:
                self.queue.append(data)
        elif not self.closed:
            self.active = True
            if self.paused and self.transport.get_write_buffer_size() > WRITE_BUFFER_MAX:
                self.drop(
                    "write_stalled",
                    "tcp:%s:%s does not read: %d bytes queued, closing",
                    self.peer[0],
                    self.peer[1],
                    self.transport.get_write_buffer_size(),
                )
                return
            self.transport.write(data)


class TcpPool:
    """Connections by peer address, reused for requests and responses alike; the limits.

    Outbound connections get the idle timeout too: `send` opens a new one when the old one
    is gone, and a dialog's requests either come with traffic or find the new connection.
    """

    def __init__(self, core, loop):
        self.core = core
        self.loop = loop
        self.conns = {}
        self.live = set()  # every connected TcpConnection, inbound and outbound, for the sweep
        self.inbound = 0
        self.per_ip = {}
        self.limit_log = LogQuota(LIMIT_LOGS_PER_SECOND, log, "tcp connections refused or closed")
        self.connecting = Background(loop)
        self.tls = None  # proxy.tls.TlsConfig when TLS is configured
        self.tls_table_names = {}  # (ip, port) -> host name of a TLS destination in the table
        self.tls_names = {}  # (ip, port) -> host name a Route or R-URI gave that TLS next hop
        self.sweeper = None
        self._view = None
        self._limits = None

    def limits(self):
        view = self.core.view
        if view is not self._view:
            old = self._limits
            limits = TcpLimits(view.settings)
            if limits.by_file_limit and (
                old is None or (old.max_connections, old.wanted) != (limits.max_connections, limits.wanted)
            ):
                log.warning(
                    "tcp_max_connections %d is more than %d%% of the open file limit: at most %d inbound tcp connections",
                    limits.wanted,
                    int(FILE_LIMIT_SHARE * 100),
                    limits.max_connections,
                )
            self._view, self._limits = view, limits
        return self._limits

    def admit(self, conn):
        """An accepted connection may stay (else it is refused, with one log line)."""
        limits = self.limits()
        ip, port = conn.peer
        inbound = self.inbound
        # the last tenth of the cap is kept for trusted peers (carriers, dialers, our servers),
        # so a flood from elsewhere cannot lock them out
        if inbound >= limits.max_connections or (inbound >= limits.untrusted_max and not self.core.view.is_trusted(ip)):
            self.core.accounting.tcp_refused("cap")
            self.limit_log.warning(
                self.loop.time(),
                "tcp connection from %s:%s refused: %d inbound connections, the cap (%s %d)",
                ip,
                port,
                inbound,
                "open file limit share" if limits.by_file_limit else "tcp_max_connections",
                limits.max_connections,
            )
            return False
        n = self.per_ip.get(ip, 0)
        # trusted peers may multiplex many connections from one address
        if n >= limits.per_ip and not self.core.view.is_trusted(ip):
            self.core.accounting.tcp_refused("per_ip")
            self.limit_log.warning(
                self.loop.time(),
                "tcp connection from %s:%s refused: %d connections from this address (tcp_max_per_ip)",
                ip,
                port,
                n,
            )
            return False
        self.per_ip[ip] = n + 1
        self.inbound += 1
        conn.counted = True
        return True

    def register(self, conn):
        self.conns[conn.peer] = conn
        conn.last_active = self.loop.time()
        self.live.add(conn)
        if self.sweeper is None:
            self.sweeper = self.loop.call_later(self.limits().period, self._sweep)

    def forget(self, conn):
        if self.conns.get(conn.peer) is conn:
            del self.conns[conn.peer]
        self.live.discard(conn)
        if conn.counted:
            conn.counted = False
            self.inbound -= 1
            ip = conn.peer[0]
            n = self.per_ip[ip] - 1
            if n:
                self.per_ip[ip] = n
            else:
                del self.per_ip[ip]

    def _sweep(self):
        """Close connections idle too long, or stuck inside one message too long."""
        limits = self.limits()
        now = self.loop.time()
        idle_before = now - limits.idle
        partial_before = now - limits.message
        idle, stuck = [], []
        for conn in self.live:
            if conn.active:
                conn.active = False
                conn.last_active = now
            elif conn.last_active <= idle_before:
                idle.append(conn)
                continue
            since = conn.partial_since
            if since is not None and since <= partial_before and conn.framer.buf:
                stuck.append(conn)
        for conn in stuck:
            conn.drop(
                "incomplete",
                "tcp:%s:%s sent %d bytes of a message in %.1f s without finishing it, closing",
                conn.peer[0],
                conn.peer[1],
                len(conn.framer.buf),
                now - conn.partial_since,
            )
        for conn in idle:
            # ordinary housekeeping, not an attack: no warning
            if not conn.closed:
                conn.closed_why = "idle"
                conn.closed = True
                self.core.accounting.tcp_closed("idle")
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("tcp:%s:%s idle for %.0f s, closing", conn.peer[0], conn.peer[1], now - conn.last_active)
                transport = conn.transport
                # a peer that does not read would hold a graceful close open forever
                if transport.get_write_buffer_size():
                    transport.abort()
                else:
                    transport.close()
        self.limit_log.flush(now)
        self.sweeper = self.loop.call_later(limits.period, self._sweep) if self.live else None

    def send(self, addr, data, listener, tls=False):
        conn = self.conns.get(addr)
        if conn is None or conn.closed or conn.tls != tls:
            conn = TcpConnection(self.core, listener, peer=addr, tls=tls)
            self.conns[addr] = conn
            self.connecting.start(self._connect(conn, addr))
        conn.send(data)

    async def _connect(self, conn, addr):
        tls = self.tls if conn.tls else None
        try:
            if tls is None:
                if conn.tls:
                    raise ConnectionRefusedError(0, "no TLS configured on this proxy")
                await self.loop.create_connection(lambda: conn, addr[0], addr[1])
            else:
                await self.loop.create_connection(
                    lambda: conn,
                    addr[0],
                    addr[1],
                    ssl=tls.client,
                    # verified against the name the destination was configured with, or its IP SAN
                    server_hostname=self.tls_name(addr),
                    ssl_handshake_timeout=tls.handshake_timeout,
                )
        except OSError as exc:  # ssl.SSLError and TimeoutError are OSErrors too
            conn.closed = True
            if self.conns.get(addr) is conn:
                del self.conns[addr]
            if conn.tls:
                why = handshake_failure(exc)[1] if not isinstance(exc, ConnectionRefusedError) else exc.strerror or str(exc)
                self.core.on_unreachable("tls", addr, f"TLS connect failed: {why}")
            else:
                self.core.on_unreachable("tcp", addr, f"TCP connect failed: {exc.strerror or exc}")

    def note_tls_destinations(self, table, view):
        """Before a table is applied: the names TLS destinations are verified against; a TLS
        destination this proxy cannot reach (no tls listener to name in Via and Record-Route,
        or no TLS set up) is left out of `view.addr_of`, i.e. not used, with one log line."""
        has_listener = any(lis.proto == "tls" for lis in self.core.listeners)
        names = {}
        for dset in table.sets.values():
            for d in dset.destinations:
                addr = view.addr_of.get(d.id)
                if d.transport != "tls" or addr is None:
                    continue
                if not has_listener or self.tls is None:
                    log.error("destination %s (%s) is TLS but this proxy has no --listen tls: listener: not used", d.id, d.uri)
                    del view.addr_of[d.id]
                elif d.host != addr[0]:
                    names[addr] = d.host
        self.tls_table_names = names

    def name_tls(self, addr, host):
        """A name a Route or R-URI gave the TLS next hop at `addr`. A configured destination's name
        wins: a party to a dialog cannot make us verify a server against a name of its choosing."""
        if host != addr[0] and addr not in self.tls_table_names:
            if len(self.tls_names) > TLS_NAMES_MAX:
                self.tls_names.clear()
            self.tls_names[addr] = host

    def tls_name(self, addr):
        """The name a TLS server at `addr` must carry in its certificate (default: its IP)."""
        return self.tls_table_names.get(addr) or self.tls_names.get(addr) or addr[0]

    def close(self):
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for conn in list(self.conns.values()) + list(self.live):
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()


def parse_listen(spec):
    """'udp:127.0.0.1:5060', 'tcp:[::1]:5060' or 'tls:0.0.0.0:5061' -> (proto, host, port);
    ValueError names the part."""
    proto, sep, rest = spec.strip().partition(":")
    proto = proto.lower()
    if not sep or proto not in ("udp", "tcp", "tls"):
        raise ValueError(f"listen {spec!r}: protocol must be udp, tcp or tls")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]:")
    else:
        host, _, port = rest.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536:
        raise ValueError(f"listen {spec!r}: expected proto:host:port")
    return proto, host, int(port)


def parse_advertise(spec):
    """'203.0.113.10', '203.0.113.10:5060', 'sip.example.com:5060' or '[2001:db8::1]:5060' ->
    (host, port or None: each listener's own port); ValueError names the part."""
    text = spec.strip()
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"advertise {spec!r}: expected HOST[:PORT] or [IPv6][:PORT]")
    elif text.count(":") > 1:
        host, port = text, ""  # a bare IPv6 address
    else:
        host, _, port = text.partition(":")
    if (
        not host
        or any(c in host for c in " <>;,@\"'/")
        or (port and (not (port.isascii() and port.isdigit()) or len(port) > 5 or not 0 < int(port) < 65536))
    ):
        raise ValueError(f"advertise {spec!r}: expected HOST[:PORT] or [IPv6][:PORT]")
    return host, int(port) if port else None
