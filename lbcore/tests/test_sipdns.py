"""RFC 3263 lookups (lbcore.sipdns) against a real dnsmasq on loopback."""

import asyncio
import random

import pytest

from lbcore import sipdns
from lbcore.sipdns import Hop, LookupFailed, Name
from tests.dnsmasq import host, naptr, srv


def locate(server, uri):
    resolver = sipdns.make_resolver(sipdns.nameservers(server.servers), timeout=2.0)
    return asyncio.run(sipdns.locate(resolver, Name.of(uri)))


def test_srv_targets_come_in_priority_order_with_their_weights(dnsmasq):
    server = dnsmasq(
        [
            srv("_sip._udp.ast.test", "b.ast.test", 5082, priority=20, weight=1),
            srv("_sip._udp.ast.test", "a.ast.test", 5081, priority=10, weight=70),
            host("a.ast.test", "127.0.0.11"),
            host("b.ast.test", "127.0.0.12"),
        ]
    )
    found = locate(server, "sip:ast.test")
    assert found.via == "SRV"
    assert found.hops == (Hop("udp", "127.0.0.11", 5081, 10, 70), Hop("udp", "127.0.0.12", 5082, 20, 1))
    assert found.ttl == 1


def test_naptr_chooses_the_transport_and_its_srv(dnsmasq):
    server = dnsmasq(
        [
            naptr("ast.test", 10, 20, "SIP+D2U", "_sip._udp.ast.test"),
            naptr("ast.test", 10, 10, "SIP+D2T", "_sip._tcp.ast.test"),
            srv("_sip._udp.ast.test", "u.ast.test", 5081),
            srv("_sip._tcp.ast.test", "t.ast.test", 5082),
            host("u.ast.test", "127.0.0.11"),
            host("t.ast.test", "127.0.0.12"),
        ]
    )
    found = locate(server, "sip:ast.test")
    assert found.via == "NAPTR"
    assert [str(h) for h in found.hops] == ["127.0.0.12:5082;transport=tcp"]


def test_an_explicit_transport_asks_srv_for_it_only(dnsmasq):
    server = dnsmasq(
        [
            naptr("ast.test", 10, 10, "SIP+D2U", "_sip._udp.ast.test"),
            srv("_sip._udp.ast.test", "u.ast.test", 5081),
            srv("_sip._tcp.ast.test", "t.ast.test", 5082),
            host("u.ast.test", "127.0.0.11"),
            host("t.ast.test", "127.0.0.12"),
        ]
    )
    assert [str(h) for h in locate(server, "sip:ast.test;transport=tcp").hops] == ["127.0.0.12:5082;transport=tcp"]


def test_an_explicit_port_skips_srv(dnsmasq):
    server = dnsmasq(
        [srv("_sip._udp.ast.test", "u.ast.test", 5081), host("u.ast.test", "127.0.0.11"), host("ast.test", "127.0.0.5")]
    )
    found = locate(server, "sip:ast.test:5070")
    assert (found.via, found.hops) == ("A", (Hop("udp", "127.0.0.5", 5070),))


def test_no_naptr_nor_srv_falls_back_to_the_address_on_the_default_port(dnsmasq):
    server = dnsmasq([host("ast.test", "127.0.0.5")])
    found = locate(server, "sip:ast.test")
    assert (found.via, found.hops) == ("A", (Hop("udp", "127.0.0.5", 5060),))


def test_a_missing_name_says_nxdomain(dnsmasq):
    server = dnsmasq([host("ast.test", "127.0.0.5")])
    with pytest.raises(LookupFailed) as failed:
        locate(server, "sip:gone.test:5070")
    assert failed.value.why == "NXDOMAIN"


def test_a_server_that_refuses_says_so(dnsmasq):
    server = dnsmasq([host("ast.test", "127.0.0.5")])
    with pytest.raises(LookupFailed) as failed:
        locate(server, "sip:elsewhere.example:5070")  # outside its zone, no upstream: REFUSED
    assert failed.value.why.startswith("SERVFAIL")
    assert "REFUSED" in failed.value.why


def test_an_ip_literal_is_no_name():
    assert Name.of("sip:127.0.0.1:5070") is None
    assert Name.of("sip:[::1]") is None
    assert Name.of("sip:Ast.Test;transport=TCP") == Name("sip", "ast.test", None, "tcp")


def test_weights_spread_the_first_pick_within_the_best_priority():
    hops = (Hop("udp", "a", 1, 10, 75), Hop("udp", "b", 1, 10, 25), Hop("udp", "c", 1, 20, 100))
    rng = random.Random(7)
    firsts = [sipdns.weighted_order(hops, rng.random)[0].ip for _ in range(4000)]
    assert 0.70 < firsts.count("a") / 4000 < 0.80
    assert firsts.count("c") == 0  # the next priority only after the best one
    assert sipdns.weighted_order(hops, rng.random)[-1].ip == "c"


def test_sip_dns_servers_is_read_strictly():
    assert sipdns.nameservers("127.0.0.1:5353, [::1]:53,10.0.0.2") == [("127.0.0.1", 5353), ("::1", 53), ("10.0.0.2", 53)]
    assert sipdns.nameservers("") == []
    with pytest.raises(ValueError, match="not an IP address"):
        sipdns.nameservers("dns.example:53")
    with pytest.raises(ValueError, match="bad port"):
        sipdns.nameservers("127.0.0.1:x")
    # int() reads these as 53; a port is ASCII digits
    for port in ("+53", "5_3", " 53", "\u0665\u0663"):
        with pytest.raises(ValueError, match="bad port"):
            sipdns.nameservers("127.0.0.1:" + port)


def test_ttl_bounds_fail_fast():
    assert sipdns.ttl_bounds({"SIP_DNS_MIN_TTL": "1"}) == (1.0, sipdns.MAX_TTL)
    with pytest.raises(ValueError, match="SIP_DNS_MAX_TTL"):
        sipdns.ttl_bounds({"SIP_DNS_MIN_TTL": "10", "SIP_DNS_MAX_TTL": "5"})


def test_an_srv_target_without_an_address_is_left_out_and_named(dnsmasq):
    server = dnsmasq(
        [
            srv("_sip._udp.ast.test", "gone.ast.test", 5081, priority=10),
            srv("_sip._udp.ast.test", "b.ast.test", 5082, priority=20),
            host("b.ast.test", "127.0.0.12"),
        ]
    )
    found = locate(server, "sip:ast.test")
    assert found.hops == (Hop("udp", "127.0.0.12", 5082, 20, 10),)
    assert found.missing == ("gone.ast.test: NXDOMAIN",)


def test_every_srv_target_without_an_address_fails_the_name(dnsmasq):
    server = dnsmasq([srv("_sip._udp.ast.test", "gone.ast.test", 5081), host("other.test", "127.0.0.1")])
    with pytest.raises(LookupFailed) as failed:
        locate(server, "sip:ast.test")
    assert failed.value.why == "no SRV target has an address (NXDOMAIN)"


def test_sips_and_transport_tls_look_up_sips_tcp_and_go_over_tls():
    """RFC 3263: SIPS+D2T and _sips._tcp are TLS; sips: used to be sent over plain TCP."""
    from lbcore import sipdns

    assert sipdns.NAPTR_SERVICES["sips"] == {"SIPS+D2T": "tls"}
    assert sipdns.SRV_PREFIX[("sips", "tls")] == sipdns.SRV_PREFIX[("sip", "tls")] == "_sips._tcp."
