"""A name in a Route or R-URI is resolved without blocking the loop, in bounded time, with a
negative cache and a rate cap for untrusted sources. One packet naming a host behind a silent
resolver froze the proxy for ~10 s (OPTIONS unanswered, 38 of 600 calls failed)."""

import asyncio
import socket
import time

from proxy.resolver import BUSY, UNRESOLVABLE, Resolver
from proxy.tests.harness import Harness, dest, request, run


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


class SilentNameserver:
    """A loopback "DNS server" that reads queries and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def queries(self):
        n = 0
        while True:
            try:
                self.sock.recv(4096)
            except BlockingIOError:
                return n
            n += 1

    def close(self):
        self.sock.close()


def test_a_name_behind_a_silent_resolver_does_not_stall_anything_else():
    async def scenario():
        silent = SilentNameserver()
        async with Harness(_one) as h:
            h.core.resolver = Resolver(asyncio.get_running_loop(), nameservers=[silent.address], timeout=0.5)
            routes = [b"<sip:127.0.0.1:%d;lr>" % h.proxy_port, b"<sip:stall.lbtest.invalid:5099;lr>"]
            h.send(request(b"MESSAGE", h.uac_port, h.proxy_port, b"stall-1", to_tag=b"x", routes=routes))
            # while the lookup hangs, the proxy answers at once
            for n in range(3):
                h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"ping-%d" % n))
                reply = await h.uac.recv(timeout=0.4)
                assert reply.code == 200 and reply.call_id == b"ping-%d" % n
            reply = await h.uac.recv(timeout=3)
            assert (reply.call_id, reply.code) == (b"stall-1", 478)
            assert silent.queries() >= 1
            # the failure is remembered: the same name again costs no query and no wait
            h.send(request(b"MESSAGE", h.uac_port, h.proxy_port, b"stall-2", to_tag=b"x", routes=routes))
            reply = await h.uac.recv(timeout=0.3)
            assert (reply.call_id, reply.code) == (b"stall-2", 478)
            assert silent.queries() == 0
            h.core.resolver.close()
        silent.close()

    run(scenario())


def test_it_rate_limits_new_names_from_untrusted_sources():
    async def scenario():
        silent = SilentNameserver()
        resolver = Resolver(asyncio.get_running_loop(), nameservers=[silent.address], timeout=0.3, untrusted_per_second=2)
        answers = []
        for n in range(4):
            resolver.resolve(f"name{n}.lbtest.invalid", True, lambda ip, why: answers.append(why))
        assert answers == [BUSY, BUSY], "past the rate cap an untrusted name is refused at once"
        resolver.resolve("trusted.lbtest.invalid", False, lambda ip, why: answers.append(why))
        assert len(resolver.pending) == 3, "a trusted source is not held back by untrusted ones"
        end = time.monotonic() + 3
        while resolver.pending and time.monotonic() < end:
            await asyncio.sleep(0.05)
        assert answers == [BUSY, BUSY] + [UNRESOLVABLE] * 3
        resolver.close()
        silent.close()

    run(scenario())


def test_it_caps_lookups_in_flight_and_joins_the_same_name():
    async def scenario():
        silent = SilentNameserver()
        resolver = Resolver(asyncio.get_running_loop(), nameservers=[silent.address], timeout=0.3, max_pending=2)
        answers = []
        for host in ("a.lbtest.invalid", "a.lbtest.invalid", "b.lbtest.invalid", "c.lbtest.invalid"):
            resolver.resolve(host, False, lambda ip, why: answers.append(why))
        assert answers == [BUSY] and set(resolver.pending) == {"a.lbtest.invalid", "b.lbtest.invalid"}
        resolver.close()
        silent.close()

    run(scenario())


def test_literals_and_hosts_file_names_resolve():
    async def scenario():
        resolver = Resolver(asyncio.get_running_loop(), timeout=1.0)
        got = []
        resolver.resolve("127.0.0.1", True, lambda ip, why: got.append(ip))
        assert got == ["127.0.0.1"], "a literal answers synchronously"
        done = asyncio.Event()
        resolver.resolve("localhost", False, lambda ip, why: (got.append(ip), done.set()))
        await asyncio.wait_for(done.wait(), 2)
        assert got[1] in ("127.0.0.1", "::1")
        resolver.close()

    run(scenario())
