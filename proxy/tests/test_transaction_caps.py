"""State from traffic is capped: per untrusted source and in total, 503 + Retry-After past
the cap. 30,000 in-dialog requests from one untrusted address took RSS from 146 to 312 MB."""

from proxy.tests.harness import Harness, dest, peer_at, request, run

UNTRUSTED = "127.0.0.66"


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


def test_it_caps_live_transactions_per_untrusted_source():
    async def scenario():
        async with Harness(_one, trusted_networks=["127.0.0.1/32"], max_transactions_per_source=5) as h:
            a = h.dest_ports[0]
            routes = await h.call_up(b"capped", a)
            port = next(h.ports)
            party = await peer_at(UNTRUSTED, port)
            try:
                codes = []
                for n in range(8):
                    party.send(
                        request(
                            b"INFO",
                            port,
                            h.proxy_port,
                            b"capped",
                            cseq=10 + n,
                            to_tag=b"uas",
                            routes=routes,
                            uri=b"sip:svc@127.0.0.1:%d" % a,
                        ),
                        h.proxy_port,
                    )
                relayed = [await h.uas[a].recv() for _ in range(5)]
                for got in relayed:
                    h.uas[a].answer(got, 200, b"OK")
                for _ in range(8):
                    reply = await party.recv()
                    codes.append(reply.code)
                    if reply.code == 503:
                        assert reply.get(b"retry-after") is not None
                assert sorted(codes) == [200] * 5 + [503] * 3
                assert h.core.by_source == {UNTRUSTED: 5}
                assert await h.uas[a].silent(0.2)
            finally:
                party.close()
            # lingering transactions give their places back when they expire
            for st in list(h.core.servers.values()):
                if st.source is not None:
                    h.core.released(st.source)
            assert h.core.by_source == {}

    run(scenario())


def test_it_caps_transactions_in_total():
    async def scenario():
        async with Harness(_one, max_transactions=4) as h:
            for n in range(6):
                h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"total-%d" % n))
            codes = sorted([(await h.uac.recv()).code for _ in range(6)])
            assert codes == [200] * 4 + [503] * 2
            assert len(h.core.servers) == 4
            totals, _ = h.core.accounting.snapshot()  # what the heartbeat carries to lb:node:<name>
            assert totals["refused"] == 2

    run(scenario())


def test_a_flood_of_forged_in_dialog_requests_leaves_no_state():
    async def scenario():
        async with Harness(_one, trusted_networks=["127.0.0.1/32"]) as h:
            port = next(h.ports)
            attacker = await peer_at(UNTRUSTED, port)
            try:
                n = 2000
                for i in range(n):
                    attacker.send(
                        request(
                            b"MESSAGE",
                            port,
                            h.proxy_port,
                            b"flood-%d" % i,
                            to_tag=b"x",
                            routes=[
                                b"<sip:127.0.0.1:%d;lr>" % h.proxy_port,
                                b"<sip:127.0.0.1:%d;lr>" % (h.dest_ports[1] + i % 3),
                            ],
                        ),
                        h.proxy_port,
                    )
                    if i % 50 == 49:  # in bursts the loopback receive buffer holds
                        for _ in range(50):
                            assert (await attacker.recv()).code == 403
                assert not h.core.servers
                assert not h.core.by_source
                assert len(h.core.uri_cache) < 10
            finally:
                attacker.close()

    run(scenario())
