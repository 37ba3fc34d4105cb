"""The prober resolves destination names as the proxy does (RFC 3263 against SIP_DNS_SERVERS, here a
real dnsmasq): it probes every SRV target and reports the best in SRV order, groups servers by where
the name leads, and probes the last known addresses of a name that stopped resolving."""

import asyncio

import pytest

from probes import dnscache
from probes.prober import ProbeConfig, Target, by_server, probe_all
from probes.tests.conftest import free_port
from tests.dnsmasq import Dnsmasq, host, srv


@pytest.fixture
def dns(monkeypatch):
    started = []

    def start(records):
        server = Dnsmasq(records, port=free_port(), ttl=1)
        started.append(server)
        monkeypatch.setenv("SIP_DNS_SERVERS", server.servers)
        return server

    dnscache.forget()
    yield start
    dnscache.forget()
    for server in started:
        server.stop()


def probe(targets, timeout=0.5):
    return asyncio.run(probe_all(targets, ProbeConfig(timeout=timeout, from_uri="sip:lb@127.0.0.1")))


def by_name(target_id=1):
    return Target(target_id, "sip:ast.test", "ast.test", 5060, "udp")


def test_a_name_is_as_healthy_as_its_best_srv_target(dns, responder):
    nothing = free_port()  # the first target: nobody listens
    dns(
        [
            srv("_sip._udp.ast.test", "a.ast.test", nothing, priority=10),
            srv("_sip._udp.ast.test", "b.ast.test", responder.port, priority=20),
            host("a.ast.test", "127.0.0.1"),
            host("b.ast.test", "127.0.0.1"),
        ]
    )
    [outcome] = probe([by_name()])
    assert (outcome.id, outcome.code) == (1, 200)
    assert responder.count() == 1


def test_servers_are_grouped_by_where_the_name_leads(dns, responder):
    dns([srv("_sip._udp.ast.test", "a.ast.test", responder.port), host("a.ast.test", "127.0.0.1")])
    literal = Target(2, f"sip:127.0.0.1:{responder.port}", "127.0.0.1", responder.port, "udp")
    groups = asyncio.run(by_server([by_name(), literal], 1.0))
    assert list(groups) == [f"udp:127.0.0.1:{responder.port}"]
    assert [t.id for t in groups[f"udp:127.0.0.1:{responder.port}"]] == [1, 2]


def test_a_name_that_stops_resolving_is_probed_at_its_last_addresses(dns, responder):
    server = dns([srv("_sip._udp.ast.test", "a.ast.test", responder.port), host("a.ast.test", "127.0.0.1")])
    assert probe([by_name()])[0].code == 200
    server.restart([host("other.test", "127.0.0.9")])  # ast.test: NXDOMAIN now
    dnscache.expire()
    assert probe([by_name()])[0].code == 200
    assert responder.count() == 2
    dnscache.forget()  # a worker that never knew the name says why it cannot probe it
    assert probe([by_name()])[0].status == "cannot resolve host (NXDOMAIN)"
