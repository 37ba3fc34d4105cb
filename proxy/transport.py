"""Sockets: UDP listeners, one connected UDP socket per destination, TCP server and pool.

Why a connected UDP socket per destination: Linux reports an ICMP port-unreachable only
to a connected socket, and only that tells us *which* destination died. Requests to
destinations leave through it; replies still come back to the listener (our Via names
it), and anything the destination sends to the connected socket is read and handled too.
"""

import asyncio
import fcntl
import logging
import socket
import struct
import termios

from proxy.overload import enable_timestamps
from sip.errors import SipSyntaxError
from sip.framing import StreamFramer

log = logging.getLogger("proxy.transport")

_FIONREAD = getattr(termios, "FIONREAD", 0x541B)
_INT = struct.Struct("i")


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

    def __init__(self, proto, host, port):
        self.proto = proto
        self.host = host
        self.port = port
        self.advertised = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        hostpart = f"[{self.advertised}]" if ":" in self.advertised else self.advertised
        self.sent_by = f"{hostpart}:{port}".encode()
        self.via_prefix = b"Via: SIP/2.0/" + proto.upper().encode() + b" " + self.sent_by + b";branch="
        tparam = b";transport=tcp" if proto == "tcp" else b""
        self.rr_line = b"Record-Route: <sip:" + self.sent_by + tparam + b";lr>"
        self.transport = None
        self.sock = None

    def __repr__(self):
        return f"{self.proto}:{self.host}:{self.port}"


class UdpListener(Listener, asyncio.DatagramProtocol):
    def __init__(self, core, host, port, shared_port=True):
        Listener.__init__(self, "udp", host, port)
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
        self.transport.sendto(data, addr)


class TcpListener(Listener):
    def __init__(self, host, port):
        Listener.__init__(self, "tcp", host, port)


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


class TcpConnection(asyncio.Protocol):
    """One SIP-over-TCP connection, accepted or opened by us; frames the stream."""

    def __init__(self, core, listener, peer=None):
        self.core = core
        self.listener = listener
        self.peer = peer
        self.transport = None
        self.framer = StreamFramer()
        self.queue = []
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        if self.peer is None:
            self.peer = _addr(transport.get_extra_info("peername"))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.core.pool.register(self)
        for data in self.queue:
            transport.write(data)
        self.queue = []

    def data_received(self, data):
        try:
            messages = self.framer.feed(data)
        except SipSyntaxError as exc:
            log.warning("tcp:%s:%s unframeable stream (%s), closing", self.peer[0], self.peer[1], exc)
            self.transport.close()
            return
        if self.framer.pings:
            self.framer.pings = 0
            self.transport.write(b"\r\n")
        for raw in messages:
            self.core.on_message(raw, self.listener, self.peer, self)

    def connection_lost(self, exc):
        self.closed = True
        self.core.pool.forget(self)
        if self.peer is not None and self.core.calling_by_addr.get(self.peer):
            # a server that crashes closes its connections: INVITEs waiting on it fail over now
            self.core.on_unreachable("tcp", self.peer, "TCP connection lost")

    def send(self, data):
        if self.transport is None:
            self.queue.append(data)
        elif not self.closed:
            self.transport.write(data)


class TcpPool:
    """Connections by peer address, reused for requests and responses alike."""

    def __init__(self, core, loop):
        self.core = core
        self.loop = loop
        self.conns = {}

    def register(self, conn):
        self.conns[conn.peer] = conn

    def forget(self, conn):
        if self.conns.get(conn.peer) is conn:
            del self.conns[conn.peer]

    def send(self, addr, data, listener):
        conn = self.conns.get(addr)
        if conn is None or conn.closed:
            conn = TcpConnection(self.core, listener, peer=addr)
            self.conns[addr] = conn
            self.loop.create_task(self._connect(conn, addr))
        conn.send(data)

    async def _connect(self, conn, addr):
        try:
            await self.loop.create_connection(lambda: conn, addr[0], addr[1])
        except OSError as exc:
            conn.closed = True
            if self.conns.get(addr) is conn:
                del self.conns[addr]
            self.core.on_unreachable("tcp", addr, f"TCP connect failed: {exc.strerror or exc}")

    def close(self):
        for conn in list(self.conns.values()):
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()


def parse_listen(spec):
    """'udp:127.0.0.1:5060' or 'tcp:[::1]:5060' -> (proto, host, port); ValueError names the part."""
    proto, sep, rest = spec.strip().partition(":")
    proto = proto.lower()
    if not sep or proto not in ("udp", "tcp"):
        raise ValueError(f"listen {spec!r}: protocol must be udp or tcp")
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]:")
    else:
        host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen {spec!r}: expected proto:host:port")
    return proto, host, int(port)
