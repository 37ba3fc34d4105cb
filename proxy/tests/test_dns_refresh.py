"""Issue 14's regression: a destination's host name was resolved once, when a table arrived, and its
address kept until the next table. The whole proxy (proxy.server.serve: follower, heartbeat, DNS) runs
here on real sockets against a real Redis and a real dnsmasq; the record changes under it, and the
running proxy must send the next calls to the new address, with no new table and no restart. Then the
name stops resolving: the proxy keeps sending to the last address and says so in lb:dnsfail:<node>.

Every resolver the proxy has asks only this test's dnsmasq (SIP_DNS_SERVERS; the c-ares one for
request-time names too), so nothing leaves loopback.
"""

import asyncio
import functools
import json

from lbcore import contract
from proxy import resolver, server
from proxy.tests.harness import Peer, port_block, request, run
from sip.responses import response_bytes
from tests.dnsmasq import Dnsmasq, host


def publish(redis, dest_port):
    dest = {"id": 1, "setid": 1, "uri": f"sip:ast.test:{dest_port}", "host": "ast.test", "port": dest_port, "transport": "udp"}
    dset = {"setid": 1, "name": "out", "algorithm": 8, "failover_codes": [500, 503], "destinations": [dest]}
    settings = {"trusted_networks": ["127.0.0.0/8"], "default_set": 1}
    redis.set(contract.TABLE_KEY, contract.encode_table(1, [dset], [], settings))


async def landed(uac, proxy_port, peers, call_id):
    """Send one INVITE; the peer it reached (answered 486), or None within a second."""
    uac.send(request(b"INVITE", uac.port, proxy_port, call_id), proxy_port)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.0
    while loop.time() < end:
        for name, peer in peers.items():
            while not peer.queue.empty():
                msg, _ = peer.queue.get_nowait()
                if msg.method == b"INVITE" and msg.call_id == call_id:
                    peer.send(response_bytes(msg, 486, b"Busy Here", to_tag=b"uas"), msg.via.port)
                    return name
        await asyncio.sleep(0.02)
    return None


async def until_lands(uac, proxy_port, peers, want, tag, deadline=20.0):
    """Calls, 50 ms apart, until one reaches `want` (bounded by `deadline`)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    seen = []
    for n in range(1000):  # bounded; the deadline ends it first
        seen.append(await landed(uac, proxy_port, peers, b"%s-%d" % (tag, n)))
        if seen[-1] == want:
            return
        if loop.time() > end:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(seen)} calls over {deadline}s never reached {want}; the last went to {seen[-3:]}")


def test_a_changed_address_record_reaches_the_running_proxy_and_a_lost_name_keeps_it(redis, redis_url, monkeypatch):
    ports = port_block()
    proxy_port, uac_port, dest_port, dns_port = (next(ports) for _ in range(4))
    dns = Dnsmasq([host("ast.test", "127.0.0.1")], port=dns_port, ttl=1)
    monkeypatch.setenv("SIP_DNS_SERVERS", dns.servers)
    monkeypatch.setenv("SIP_DNS_MIN_TTL", "1")
    monkeypatch.setattr(
        resolver.Resolver, "__init__", functools.partialmethod(resolver.Resolver.__init__, nameservers=[dns.servers])
    )
    monkeypatch.setattr(server.gcpolicy, "install", lambda: None)  # no gc.freeze in the test process
    publish(redis, dest_port)

    async def scenario():
        loop = asyncio.get_running_loop()
        peers = {}
        for ip in ("127.0.0.1", "127.0.0.2"):
            _, peers[ip] = await loop.create_datagram_endpoint(lambda: Peer(dest_port), local_addr=(ip, dest_port))
        _, uac = await loop.create_datagram_endpoint(lambda: Peer(uac_port), local_addr=("127.0.0.1", uac_port))
        stop = asyncio.Event()
        proxy = loop.create_task(server.serve([("udp", "127.0.0.1", proxy_port)], redis_url, "dns-refresh", stop_event=stop))
        try:
            await until_lands(uac, proxy_port, peers, "127.0.0.1", b"before")

            await asyncio.to_thread(dns.restart, [host("ast.test", "127.0.0.2")])
            await until_lands(uac, proxy_port, peers, "127.0.0.2", b"after")
            assert await landed(uac, proxy_port, peers, b"after-again") == "127.0.0.2"

            await asyncio.to_thread(dns.restart, [host("other.test", "127.0.0.9")])  # ast.test: NXDOMAIN
            for _ in range(400):  # bounded poll: the heartbeat writes it within a second of the failure
                raw = await asyncio.to_thread(redis.hget, contract.dns_key("dns-refresh"), "1")
                if raw is not None:
                    break
                await asyncio.sleep(0.05)
            assert raw is not None, "no lb:dnsfail:dns-refresh warning for destination 1 while the name fails"
            warning = json.loads(raw)
            assert (warning["name"], warning["why"], warning["using"]) == (
                f"sip:ast.test:{dest_port}",
                "NXDOMAIN",
                [f"127.0.0.2:{dest_port}"],
            )
            assert await landed(uac, proxy_port, peers, b"lost") == "127.0.0.2", "the last known address stays in use"
        finally:
            stop.set()
            await asyncio.wait_for(proxy, 10)
            uac.close()
            for peer in peers.values():
                peer.close()
        # a clean stop takes its failures with it: no crash for the panel to explain
        assert not await asyncio.to_thread(redis.exists, contract.dns_key("dns-refresh"))

    try:
        run(scenario())
    finally:
        dns.stop()
