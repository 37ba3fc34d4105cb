"""A small SIP responder for probe tests and the probe bench: UDP and/or TCP on 127.0.0.1.

It answers each request with a configurable code (200, 404, 503, ...) or stays
silent, per Request-URI or for all, and records what it received so tests can wait
for "n probes of this URI" instead of sleeping. Runs in a thread with its own
event loop (tests), or as a process: python -m probes.tests.responder --port N.
"""

import argparse
import asyncio
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

REASONS = {
    200: "OK",
    404: "Not Found",
    408: "Request Timeout",
    486: "Busy Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
}
SILENT = None


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic()
    transport: str
    uri: str
    call_id: str
    branch: str
    method: str = ""
    from_: str = ""
    source: str = ""  # "ip:port" the request came from


def _parse_request(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    method, uri, _ = lines[0].split(" ", 2)
    headers = {}
    order = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers.setdefault(key, value.strip())
        order.append((name.strip(), value.strip()))
    return method, uri, headers, order


def _reply(code, headers, order, source):
    via = headers.get("via", "")
    host, port = source[:2]
    # RFC 3581: say where the request really came from.
    via = via.replace(";rport", f";received={host};rport={port}", 1)
    to = headers.get("to", "")
    if ";tag=" not in to:
        to += ";tag=resp1"
    return (
        f"SIP/2.0 {code} {REASONS.get(code, 'Reply')}\r\n"
        f"Via: {via}\r\n"
        f"From: {headers.get('from', '')}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {headers.get('call-id', '')}\r\n"
        f"CSeq: {headers.get('cseq', '')}\r\n"
        "Server: probe-responder\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _branch(via):
    for param in via.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip() == "branch":
            return value.strip()
    return ""


class Responder:
    """Answer SIP requests on 127.0.0.1:`port` (and `extra_ports`: several servers, one
    responder) over `transports` ("udp", "tcp")."""

    def __init__(self, port, transports=("udp",), code=200, host="127.0.0.1", extra_ports=()):
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("the probe responder listens on loopback only")
        self.host, self.port, self.transports = host, port, tuple(transports)
        self.ports = (port, *extra_ports)
        self.default_code = code
        self.codes = {}  # uri -> code or SILENT
        self.received = []
        self.counts = Counter()
        self._cond = threading.Condition()
        self._loop = None
        self._thread = None
        self._servers = []

    # --- configuration (thread safe: plain dict/attr writes read by the loop thread)
    def answer(self, code, uri=None):
        """Answer `code` (SILENT for none) to `uri`, or to every URI without its own code."""
        if uri is None:
            self.default_code = code
        else:
            self.codes[uri] = code

    def code_for(self, uri):
        return self.codes.get(uri, self.default_code)

    # --- observation
    def count(self, uri=None):
        with self._cond:
            return self.counts[uri] if uri else len(self.received)

    def wait_for(self, predicate, timeout):
        """Wait until predicate(self) is true (checked on every request); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _record(self, transport, data, source):
        try:
            method, uri, headers, order = _parse_request(data)
        except ValueError:
            return None
        with self._cond:
            self.received.append(
                Received(
                    time.monotonic(),
                    transport,
                    uri,
                    headers.get("call-id", ""),
                    _branch(headers.get("via", "")),
                    method,
                    headers.get("from", ""),
                    f"{source[0]}:{source[1]}",
                )
            )
            self.counts[uri] += 1
            self._cond.notify_all()
        code = self.code_for(uri)
        if code is SILENT or method == "ACK":
            return None
        return _reply(code, headers, order, source)

    # --- running
    async def serve(self):
        loop = asyncio.get_running_loop()
        for port in self.ports:
            if "udp" in self.transports:
                sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                sock.bind((self.host, port))
                transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
                self._servers.append(transport)
            if "tcp" in self.transports:
                server = await asyncio.start_server(self._tcp_client, self.host, port, reuse_address=True)
                self._servers.append(server)

    async def _tcp_client(self, reader, writer):
        source = writer.get_extra_info("peername")
        buf = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\r\n\r\n" in buf:
                    message, buf = buf.split(b"\r\n\r\n", 1)  # probes carry no body
                    reply = self._record("tcp", message + b"\r\n\r\n", source)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def start(self):
        ready = threading.Event()
        errors = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.serve())
            except OSError as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            for server in self._servers:
                server.close()
            # Connections still open end here, inside the loop, not at interpreter exit.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"responder-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(5)
        if errors:
            raise errors[0]
        return self

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder):
        self.responder = responder

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        reply = self.responder._record("udp", data, addr)
        if reply:
            self.transport.sendto(reply, addr)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Answer SIP probes on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True, help="first port")
    parser.add_argument("--count", type=int, default=1, help="answer on this many ports from --port")
    parser.add_argument("--transport", action="append", choices=("udp", "tcp"))
    parser.add_argument("--code", type=int, default=200, help="reply code; 0 = stay silent")
    parser.add_argument("--silent-prefix", default="", help="stay silent to Request-URIs whose user part starts with this")
    args = parser.parse_args(argv)
    responders = [Responder(args.port + i, tuple(args.transport or ["udp"]), args.code or SILENT) for i in range(args.count)]
    if args.silent_prefix:
        for responder in responders:
            responder.code_for = _silent_for(responder, f"sip:{args.silent_prefix}")

    async def run():
        for responder in responders:
            await responder.serve()
        print(f"ready ports={args.port}-{args.port + args.count - 1}", flush=True)
        # Runs until the parent closes our stdin (the bench) or kills us.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())


def _silent_for(responder, prefix):
    default = responder.code_for

    def code_for(uri):
        return SILENT if uri.startswith(prefix) else default(uri)

    return code_for


if __name__ == "__main__":
    main()
