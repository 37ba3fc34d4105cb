"""The in-process proxy with a TCP listener too, TCP clients and a scripted TCP UAS."""

import asyncio
import socket
import time

from proxy.server import _bind
from proxy.tests.harness import Harness
from sip.framing import StreamFramer
from sip.message import parse_message
from sip.responses import response_bytes


def port_is_free(port):
    """Free for our listeners: UDP unbound, TCP bindable with SO_REUSEADDR (TIME_WAIT is fine)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class TcpHarness(Harness):
    """Harness whose proxy also listens on TCP at the same port (as runproxy does).

    The test ports lie in the kernel's ephemeral range, where any process's outgoing TCP
    connection may sit for a moment: a block with a taken port is skipped.
    """

    def __init__(self, dests_fn, **table_kw):
        for _ in range(10):
            super().__init__(dests_fn, **table_kw)
            if all(port_is_free(p) for p in (self.proxy_port, self.uac_port, *self.dest_ports)):
                return
        raise RuntimeError("no block of 10 free ports for a TCP harness (LBPANEL_TEST_PORT_BASE)")

    async def __aenter__(self):
        await super().__aenter__()
        loop = asyncio.get_running_loop()
        self.tcp_listener, self.tcp_server = await _bind(self.core, loop, "tcp", "127.0.0.1", self.proxy_port)
        self.core.add_listener(self.tcp_listener)
        self.clients = []
        return self

    async def __aexit__(self, *exc):
        for c in self.clients:
            c.close()
        self.tcp_server.close()
        await super().__aexit__(*exc)

    async def connect(self, host="127.0.0.1"):
        client = await TcpClient.open(self.proxy_port, host)
        self.clients.append(client)
        return client


def options(proxy_port, lport, n=1, host="127.0.0.1"):
    return (
        b"OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP %s:%d;branch=z9hG4bK-tcp-%d-%d\r\n"
        b"From: <sip:probe@%s>;tag=t%d\r\n"
        b"To: <sip:127.0.0.1:%d>\r\n"
        b"Call-ID: tcp-%d-%d\r\n"
        b"CSeq: %d OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ) % (proxy_port, host.encode(), lport, lport, n, host.encode(), lport, proxy_port, lport, n, n)


class TcpClient:
    def __init__(self, reader, writer, proxy_port, host):
        self.reader = reader
        self.writer = writer
        self.proxy_port = proxy_port
        self.host = host
        self.lport = writer.get_extra_info("sockname")[1]
        self.sent = 0

    @classmethod
    async def open(cls, proxy_port, host="127.0.0.1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port, local_addr=(host, 0))
        return cls(reader, writer, proxy_port, host)

    def write(self, data):
        self.writer.write(data)

    async def ask(self, within=2.0):
        """One OPTIONS; the response's status code (the proxy answers 200, or 403 when untrusted)."""
        self.sent += 1
        self.writer.write(options(self.proxy_port, self.lport, self.sent, self.host))
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), within)
        return int(head.split(b" ", 2)[1])

    async def closed_within(self, within):
        """Seconds until the proxy closes the connection (EOF or reset); AssertionError past `within`."""
        start = time.monotonic()
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), within - (time.monotonic() - start))
                if not data:
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            raise AssertionError(f"connection from port {self.lport} still open after {within}s") from None
        return time.monotonic() - start

    def close(self):
        self.writer.close()


class TcpUas:
    """A SIP server on TCP: answers INVITE 200 (Contact with transport=tcp), BYE 200; notes EOFs."""

    def __init__(self, port):
        self.port = port
        self.requests = asyncio.Queue()
        self.connections = 0
        self.eof = asyncio.Event()
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader, writer):
        self.connections += 1
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    msg = parse_message(raw, stream=True)
                    if msg.method is not None:
                        self._answer(msg, writer)
                        self.requests.put_nowait(msg)
        except ConnectionResetError:
            pass
        writer.close()
        self.eof.set()

    def _answer(self, req, writer):
        if req.method == b"ACK":
            return
        extra = [b"Record-Route: " + v for v in req.get_all(b"record-route")]
        extra.append(b"Contact: <sip:127.0.0.1:%d;transport=tcp>" % self.port)
        writer.write(response_bytes(req, 200, b"OK", to_tag=b"uas", extra=extra))

    async def recv(self, within=2.0):
        return await asyncio.wait_for(self.requests.get(), within)

    def close(self):
        if self.server is not None:
            self.server.close()
