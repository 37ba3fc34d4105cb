"""An in-process proxy on real UDP sockets, with scripted SIP peers (no mocks).

Ports: LBPANEL_TEST_PORT_BASE (default 25000) + 900..999 — the end-to-end tests use the
first 900 of the block; each harness takes the next 10 in which every port is free. The range is
shared (the browser tests' live server takes a TCP port of it for the whole session), so a block
with any port held, over UDP or TCP, is skipped rather than handed out.
"""

import asyncio
import itertools
import os
import time

import uvloop

from lbcore.contract import DestinationSpec, SetSpec, Table
from proxy.core import Proxy
from proxy.transport import UdpListener
from sip.message import parse_message
from sip.responses import response_bytes
from tests.ports import is_free

PORT_BASE = int(os.environ.get("LBPANEL_TEST_PORT_BASE") or 25000) + 900
_blocks = itertools.count()


def port_block():
    for _ in range(10):
        base = PORT_BASE + 10 * (next(_blocks) % 10)
        # a closed TLS or TCP connection's TIME_WAIT is no holder: every server here binds with SO_REUSEADDR
        if all(is_free(port, reuse_addr=True) for port in range(base, base + 10)):
            return iter(range(base, base + 10))
    raise RuntimeError(f"no block of 10 free ports in {PORT_BASE}..{PORT_BASE + 99} (LBPANEL_TEST_PORT_BASE)")


def run(coro):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def dest(id, port, weight=0, priority=0, transport="udp", **kw):
    return DestinationSpec(
        id=id,
        setid=1,
        uri=f"sip:127.0.0.1:{port}",
        host="127.0.0.1",
        port=port,
        transport=transport,
        weight=weight,
        priority=priority,
        **kw,
    )


def table(dests, algorithm=8, version=1, failover_codes=(500, 503), **settings):
    s = {"trusted_networks": ["127.0.0.0/8"], "default_set": 1, "fr_timer_ms": 2000, "trying_timeout_ms": 300, **settings}
    from lbcore.contract import DEFAULT_SETTINGS

    return Table(
        version=version,
        sets={1: SetSpec(1, "out", algorithm, tuple(failover_codes), tuple(dests))},
        source_rules=(),
        settings={**DEFAULT_SETTINGS, **s},
    )


class Peer(asyncio.DatagramProtocol):
    """A scripted UAC or UAS on its own UDP port."""

    def __init__(self, port):
        self.port = port
        self.queue = asyncio.Queue()
        self.transport = None
        self.gone = asyncio.Event()

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.gone.set()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((parse_message(data), addr))

    def send(self, data, port):
        self.transport.sendto(data, ("127.0.0.1", port))

    async def recv(self, timeout=2.0, skip=(100,)):
        """Next message, skipping responses whose code is in `skip`."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"peer {self.port}: nothing within {timeout}s")
            msg, addr = await asyncio.wait_for(self.queue.get(), left)
            if msg.code in skip:
                continue
            return msg

    async def silent(self, within=0.3, skip=(100,)):
        try:
            msg = await self.recv(within, skip)
        except (TimeoutError, AssertionError):
            return True
        raise AssertionError(f"peer {self.port} got an unexpected {msg!r}")

    def answer(self, req, code, reason, tag=b"uas", contact=True):
        extra = [b"Record-Route: " + v for v in req.get_all(b"record-route")]
        if contact:
            extra.append(b"Contact: <sip:127.0.0.1:%d>" % self.port)
        self.send(response_bytes(req, code, reason, to_tag=tag, extra=extra), _source_port(req))

    def close(self):
        if self.transport is not None:
            self.transport.close()

    async def crash(self):
        """Close the socket and wait until it is gone: what is sent to the port after this meets
        ICMP port unreachable (a transport's close takes effect a loop turn later)."""
        self.close()
        await asyncio.wait_for(self.gone.wait(), 5)


def _source_port(req):
    via = req.via
    return int(via.rport) if via.rport else via.port


def request(method, uac_port, proxy_port, call_id, *, branch=None, cseq=1, to_tag=None, routes=(), uri=None, extra=()):
    branch = branch or b"z9hG4bK-" + call_id + b"-%d" % cseq + method
    lines = [
        method + b" " + (uri or b"sip:service@127.0.0.1:%d" % proxy_port) + b" SIP/2.0",
        b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=" % uac_port + branch,
        b"From: <sip:caller@127.0.0.1:%d>;tag=caller" % uac_port,
        b"To: <sip:service@127.0.0.1>" + (b";tag=" + to_tag if to_tag else b""),
        b"Call-ID: " + call_id,
        b"CSeq: %d " % cseq + (b"INVITE" if method == b"ACK" and not to_tag else method),
        b"Contact: <sip:caller@127.0.0.1:%d>" % uac_port,
        b"Max-Forwards: 70",
        *[b"Route: " + r for r in routes],
        *extra,
        b"Content-Length: 0",
    ]
    if method == b"ACK":
        lines[5] = b"CSeq: %d ACK" % cseq
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Harness:
    """`async with Harness(ports, dests) as h`: h.core, h.proxy_port, h.uac, h.uas[port]."""

    def __init__(self, dests_fn, advertise=None, **table_kw):
        self.advertise = advertise  # (host, port or None) for the listener, as runproxy --advertise
        self.ports = port_block()
        self.proxy_port = next(self.ports)
        self.uac_port = next(self.ports)
        self.dest_ports = [next(self.ports) for _ in range(4)]
        self.dests_fn = dests_fn
        self.table_kw = table_kw
        self.uas = {}
        self.uac = None
        self.core = None

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        self.core = Proxy(loop, "test")
        _, lis = await loop.create_datagram_endpoint(
            lambda: UdpListener(self.core, "127.0.0.1", self.proxy_port, advertise=self.advertise),
            local_addr=("127.0.0.1", self.proxy_port),
            reuse_port=True,
        )
        self.listener = lis
        self.core.add_listener(lis)
        self.core.start()
        dests, live = self.dests_fn(self.dest_ports)
        for port in live:
            _, peer = await loop.create_datagram_endpoint(lambda p=port: Peer(p), local_addr=("127.0.0.1", port))
            self.uas[port] = peer
        _, self.uac = await loop.create_datagram_endpoint(lambda: Peer(self.uac_port), local_addr=("127.0.0.1", self.uac_port))
        self.core.apply_table(table(dests, **self.table_kw))
        self.suspects = []
        self.core.on_suspect.append(lambda d, h: self.suspects.append((d.id, h.reason)))
        return self

    async def __aexit__(self, *exc):
        self.core.stop()
        self.listener.transport.close()
        for p in self.uas.values():
            p.close()
        self.uac.close()

    def send(self, data):
        self.uac.send(data, self.proxy_port)

    def invite(self, call_id, **kw):
        self.send(request(b"INVITE", self.uac_port, self.proxy_port, call_id, **kw))

    async def call_up(self, call_id, uas_port):
        """INVITE through to `uas_port`, answered 200, ACKed; returns (route set, to-tag)."""
        self.invite(call_id)
        inv = await self.uas[uas_port].recv()
        self.uas[uas_port].answer(inv, 200, b"OK")
        ok = await self.uac.recv()
        assert ok.code == 200
        routes = ok.get_all(b"record-route")
        ack = request(
            b"ACK", self.uac_port, self.proxy_port, call_id, to_tag=b"uas", routes=routes, uri=b"sip:127.0.0.1:%d" % uas_port
        )
        self.send(ack)
        assert (await self.uas[uas_port].recv()).method == b"ACK"
        return routes


async def peer_at(host, port):
    """A Peer bound to another loopback address (127.0.0.66: outside trusted_networks)."""
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(lambda: Peer(port), local_addr=(host, port))
    return peer
