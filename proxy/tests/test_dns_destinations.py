"""Destinations by host name (RFC 3263) in a proxy on real UDP sockets, resolved by a real dnsmasq.

SRV priority and weight decide where calls go, a dead SRV target fails over to the next one within
the destination, NAPTR leads to SRV, a changed record is used without a restart, and a name that
stops resolving keeps its last addresses and says so.
"""

import asyncio
import itertools
import socket

import pytest

from lbcore.contract import DestinationSpec
from proxy import dnsnames
from proxy.tests.harness import Harness, dest, run, table
from proxy.tests.tcp_support import TcpHarness, TcpUas
from sip.responses import response_bytes
from tests.dnsmasq import Dnsmasq, host, naptr, srv

_calls = itertools.count()


def dest_literal(dest_id, port):
    return dest(dest_id, port)


def by_name(uri="sip:ast.test"):
    return DestinationSpec(id=1, setid=1, uri=uri, host="ast.test", port=5060, transport="udp")


@pytest.fixture
def dns_env(monkeypatch):
    """The proxy's resolver asks only the test's dnsmasq; TTLs of 1 s are honoured as they are."""

    def point_at(server):
        monkeypatch.setenv("SIP_DNS_SERVERS", server.servers)

    monkeypatch.setenv("SIP_DNS_MIN_TTL", "1")
    return point_at


class DnsHarness(Harness):
    """A Harness whose dnsmasq takes a port of its block, and whose table is applied as the follower
    does it: names looked up first."""

    def __init__(self, dests_fn, **kw):
        super().__init__(dests_fn, **kw)
        self.dns_port = next(self.ports)
        self.dns = None
        self.tasks = []
        self.stopped = None  # set on the way out, failing or not: names.run() ends with it

    def follow_dns(self):
        """Start the proxy's DNS refresher (proxy.server starts it in production)."""
        self.stopped = asyncio.Event()
        self.tasks.append(asyncio.get_running_loop().create_task(self.core.names.run(self.stopped)))

    async def apply(self, dests):
        tbl = table(dests)
        await self.core.names.follow(tbl)
        self.core.apply_table(tbl)
        return tbl

    async def __aexit__(self, *exc):
        if self.stopped is not None:
            self.stopped.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await super().__aexit__(*exc)
        if self.dns is not None:
            self.dns.stop()


def start_dns(h, records, dns_env):
    h.dns = Dnsmasq(records, port=h.dns_port, ttl=1)
    dns_env(h.dns)
    return h.dns


async def invites_at(h, count, ports, batch=10):
    """Send `count` INVITEs, `batch` at a time, answer each 486 where it lands; {port: INVITEs received}."""
    got = dict.fromkeys(ports, 0)
    for n in range(0, count, batch):
        for port, k in (await _batch(h, min(batch, count - n), ports)).items():
            got[port] += k
    return got


async def _batch(h, count, ports, deadline=10.0):
    for _ in range(count):
        h.invite(b"dns-%d" % next(_calls))
    got = dict.fromkeys(ports, 0)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while sum(got.values()) < count:
        assert loop.time() < end, f"only {got} of {count} INVITEs arrived"
        for port in ports:
            queue = h.uas[port].queue
            while not queue.empty():
                msg, _ = queue.get_nowait()
                if msg.method == b"INVITE":
                    got[port] += 1
                    h.uas[port].send(response_bytes(msg, 486, b"Busy Here", to_tag=b"uas"), msg.via.port)
        await asyncio.sleep(0.01)
    return got


async def wait_for(predicate, what, deadline=15.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        assert loop.time() < end, f"never {what} within {deadline}s"
        await asyncio.sleep(0.05)


def test_srv_weights_spread_new_calls_within_the_best_priority(dns_env):
    async def scenario():
        h = DnsHarness(lambda p: ([], p[:3]))
        a, b, c = h.dest_ports[:3]
        start_dns(
            h,
            [
                srv("_sip._udp.ast.test", "a.ast.test", a, priority=10, weight=75),
                srv("_sip._udp.ast.test", "b.ast.test", b, priority=10, weight=25),
                srv("_sip._udp.ast.test", "c.ast.test", c, priority=20, weight=100),
                host("a.ast.test", "127.0.0.1"),
                host("b.ast.test", "127.0.0.1"),
                host("c.ast.test", "127.0.0.1"),
            ],
            dns_env,
        )
        async with h:
            await h.apply([by_name()])
            got = await invites_at(h, 200, (a, b, c))
        assert got[c] == 0, f"the next priority took calls while the best answered: {got}"
        assert 0.6 < got[a] / 200 < 0.9, f"weights 75/25 gave {got}"

    run(scenario())


def test_a_dead_srv_target_fails_over_to_the_next_within_the_destination(dns_env):
    async def scenario():
        h = DnsHarness(lambda p: ([], p[1:2]))  # nothing listens on the first target
        dead, alive = h.dest_ports[:2]
        start_dns(
            h,
            [
                srv("_sip._udp.ast.test", "a.ast.test", dead, priority=10),
                srv("_sip._udp.ast.test", "b.ast.test", alive, priority=20),
                host("a.ast.test", "127.0.0.1"),
                host("b.ast.test", "127.0.0.1"),
            ],
            dns_env,
        )
        async with h:
            await h.apply([by_name()])
            got = await invites_at(h, 1, (alive,))
            assert got == {alive: 1}
            assert h.suspects == [], "one dead address of several does not make the destination suspect"
            assert ("udp", "127.0.0.1", dead) in h.core.dns_hops.down
            assert await invites_at(h, 3, (alive,)) == {alive: 3}

    run(scenario())


def test_naptr_leads_to_the_srv_it_names(dns_env):
    async def scenario():
        h = DnsHarness(lambda p: ([], p[:2]))
        plain, via_naptr = h.dest_ports[:2]
        start_dns(
            h,
            [
                naptr("ast.test", 10, 10, "SIP+D2U", "_sip._udp.carrier.test"),
                srv("_sip._udp.ast.test", "a.ast.test", plain),
                srv("_sip._udp.carrier.test", "b.ast.test", via_naptr),
                host("a.ast.test", "127.0.0.1"),
                host("b.ast.test", "127.0.0.1"),
            ],
            dns_env,
        )
        async with h:
            await h.apply([by_name()])
            assert await invites_at(h, 2, (plain, via_naptr)) == {plain: 0, via_naptr: 2}

    run(scenario())


def test_a_changed_record_is_used_without_restart_and_a_lost_name_keeps_its_last_address(dns_env):
    async def scenario():
        h = DnsHarness(lambda p: ([], p[:2]))
        old, new = h.dest_ports[:2]
        dns = start_dns(h, [srv("_sip._udp.ast.test", "a.ast.test", old), host("a.ast.test", "127.0.0.1")], dns_env)
        async with h:
            h.follow_dns()
            tbl = await h.apply([by_name()])
            assert await invites_at(h, 1, (old, new)) == {old: 1, new: 0}

            await asyncio.to_thread(dns.restart, [srv("_sip._udp.ast.test", "b.ast.test", new), host("b.ast.test", "127.0.0.1")])
            await wait_for(lambda: h.core.view.addr_of.get(1) == ("127.0.0.1", new), "moved to the new SRV target")
            assert await invites_at(h, 2, (old, new)) == {old: 0, new: 2}

            await asyncio.to_thread(dns.restart, [host("other.test", "127.0.0.9")])  # ast.test: NXDOMAIN now
            await wait_for(lambda: 1 in h.core.names.warnings(tbl), "warned of the lost name")
            warning = h.core.names.warnings(tbl)[1]
            assert (warning["name"], warning["why"], warning["using"]) == ("sip:ast.test", "NXDOMAIN", [f"127.0.0.1:{new}"])
            assert await invites_at(h, 2, (old, new)) == {old: 0, new: 2}, "the last known address stays in use"

    run(scenario())


def test_a_silent_name_server_does_not_hold_up_a_new_table(monkeypatch):
    """Its names are looked up for at most FOLLOW_WAIT; the table (a maintenance change, say) is
    applied meanwhile, and the name is routed to once it answers."""

    async def scenario():
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a name server that never answers
        silent.bind(("127.0.0.1", 0))
        monkeypatch.setenv("SIP_DNS_SERVERS", f"127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(dnsnames, "FOLLOW_WAIT", 0.2)  # well inside the lookup's own 2 s timeout
        h = DnsHarness(lambda p: ([], p[:1]))
        async with h:
            names = h.core.names
            await h.apply([by_name(), dest_literal(2, h.dest_ports[0])])
            assert names.late, "follow() waited for the silent name server's timeout"
            assert 2 in h.core.view.addr_of and 1 not in h.core.view.addr_of
            await asyncio.gather(*names.late, return_exceptions=True)
            assert names.warnings(h.core.view.table)[1]["why"] == "timeout"
        silent.close()

    run(scenario())


def test_naptr_can_choose_tcp(dns_env):
    """NAPTR prefers SIP+D2T: the destination (a sip: URI, UDP by default) is reached over TCP."""

    async def scenario():
        h = DnsTcpHarness(lambda p: ([], []))
        uas = await TcpUas(h.dest_ports[0]).start()
        start_dns(
            h,
            [
                naptr("ast.test", 10, 10, "SIP+D2T", "_sip._tcp.ast.test"),
                naptr("ast.test", 20, 10, "SIP+D2U", "_sip._udp.ast.test"),
                srv("_sip._tcp.ast.test", "a.ast.test", uas.port),
                srv("_sip._udp.ast.test", "a.ast.test", h.dest_ports[1]),
                host("a.ast.test", "127.0.0.1"),
            ],
            dns_env,
        )
        async with h:
            await h.apply([by_name()])
            h.invite(b"over-tcp")
            invite = await uas.recv(5.0)
            assert invite.method == b"INVITE"
            assert invite.via.transport.upper() == "TCP", "the proxy's Via names the transport it sent on"
            assert (await h.uac.recv(5.0)).code == 200
        uas.close()

    run(scenario())


class DnsTcpHarness(TcpHarness):
    def __init__(self, dests_fn, **kw):
        super().__init__(dests_fn, **kw)
        self.dns_port = next(self.ports)
        self.dns = None

    apply = DnsHarness.apply

    async def __aexit__(self, *exc):
        await super().__aexit__(*exc)
        if self.dns is not None:
            self.dns.stop()


def test_names_that_leave_the_table_are_forgotten(dns_env):
    async def scenario():
        h = DnsHarness(lambda p: ([], []))
        start_dns(h, [host("ast.test", "127.0.0.1"), host("b.test", "127.0.0.1")], dns_env)
        async with h:
            names = h.core.names
            await h.apply([by_name("sip:ast.test:5070"), DestinationSpec(2, 1, "sip:b.test:5071", "b.test", 5071, "udp")])
            assert {str(n) for n in names.entries} == {"sip:ast.test:5070", "sip:b.test:5071"}
            await h.apply([by_name("sip:ast.test:5070")])
            assert {str(n) for n in names.entries} == {"sip:ast.test:5070"}
            assert set(names.by_uri) == {"sip:ast.test:5070"}

    run(scenario())
