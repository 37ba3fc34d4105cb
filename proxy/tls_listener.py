"""The tls listener: accepts TCP itself, admits under the TCP caps, then handshakes.

Why not `create_server(ssl=...)`: asyncio calls the protocol only once the handshake is done,
so connections still handshaking would be invisible to the caps, and a peer could hold any
number of them. Here every accepted socket first takes a counted place (TcpPool.admit: the
tcp_max_connections and tcp_max_per_ip caps) and keeps it until the handshake ends, which
`connect_accepted_socket`'s handshake timeout bounds. A refused socket is reset at once.
"""

import asyncio
import errno
import logging
import socket
import struct

from proxy.background import Background
from proxy.tls import handshake_failure
from proxy.transport import TcpConnection

log = logging.getLogger("proxy.tls")

ACCEPTS_PER_WAKEUP = 64  # then other work gets the loop; the rest wait in the backlog
ACCEPT_PAUSE_S = 0.5  # after running out of descriptors: the kernel keeps the backlog meanwhile
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, frees the descriptor now


class TlsAcceptor:
    def __init__(self, core, loop, listener, sock):
        self.core = core
        self.loop = loop
        self.listener = listener
        self.sock = sock
        self.handshakes = Background(loop)
        self.pending = {}  # TcpConnection -> its socket, until the handshake task took it
        self.paused = None
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self):
        pool = self.core.pool
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                sock, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    pool.limit_log.warning(self.loop.time(), "tls accept on %s failed: %s, pausing", self.listener, exc)
                    self._pause()
                else:
                    pool.limit_log.warning(self.loop.time(), "tls accept on %s failed: %s", self.listener, exc)
                return
            conn = TcpConnection(self.core, self.listener, peer=(peer[0], peer[1]), tls=True)
            conn.inbound = True
            if not pool.admit(conn):
                conn.closed = True
                conn.closed_why = "refused"
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                sock.close()
                continue
            sock.setblocking(False)
            self.pending[conn] = sock
            self.handshakes.start(self._handshake(conn, sock))

    def _pause(self):
        self.loop.remove_reader(self.sock.fileno())
        self.paused = self.loop.call_later(ACCEPT_PAUSE_S, self._resume)

    def _resume(self):
        self.paused = None
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    async def _handshake(self, conn, sock):
        pool = self.core.pool
        tls = pool.tls
        self.pending.pop(conn, None)
        try:
            # conn.connection_made runs once the handshake is done: registered, swept, reused
            await self.loop.connect_accepted_socket(
                lambda: conn, sock, ssl=tls.server, ssl_handshake_timeout=tls.handshake_timeout
            )
        except asyncio.CancelledError:
            pool.forget(conn)
            raise
        except OSError as exc:  # ssl.SSLError too; the transport has closed the socket
            why, reason = handshake_failure(exc)
            conn.closed = True
            conn.closed_why = why
            self.core.accounting.tcp_closed(why)
            pool.limit_log.warning(self.loop.time(), "tls:%s:%s %s, closing", conn.peer[0], conn.peer[1], reason)
            pool.forget(conn)  # the protocol hears no connection_lost for a handshake that failed

    def close(self):
        if self.paused is not None:
            self.paused.cancel()
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()
        for conn, sock in self.pending.items():
            self.core.pool.forget(conn)
            sock.close()
        self.pending.clear()
        for task in self.handshakes.tasks:
            task.cancel()


def listening_socket(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
