"""Where a relayed request may go: never back to us under another spelling of our address
(one packet became 142-512 before 483), never to an address family we cannot send on (an
unhandled ValueError per packet), never to multicast or broadcast."""

import asyncio

from proxy.tests.harness import Harness, dest, request, run, table


def _one(ports):
    return [dest(1, ports[0])], ports[:1]


def test_it_reads_every_spelling_of_an_ipv4_address():
    from proxy.resolver import literal

    for spelling in ("0x7f000001", "2130706433", "127.1", "0177.0.0.1", "127.0.0.1", "[::ffff:127.0.0.1]"):
        assert literal(spelling) == "127.0.0.1", spelling
    assert literal("[::1]") == "::1"
    assert literal("ast1.example.com") is None
    assert literal("1host.example") is None


def test_any_text_is_a_literal_or_none_never_an_exception():
    from proxy.resolver import literal

    # a Via's host or received= from anyone: inet_aton raised ValueError on a NUL
    for text in ("1\x00", "127.0.0.1\x00", "\xb2", "1\xb2", "[fe80::1%eth0]", "fe80::1%\x00", "[::1%25x]", "[]", "["):
        assert literal(text) is None, text


def test_it_recognises_itself_under_an_alias_and_does_not_loop():
    async def scenario():
        async with Harness(_one) as h:
            a = h.dest_ports[0]
            # sip/uri.py refuses all-digit and zero-padded hosts (400); a hex host is a valid host name
            for n, alias in enumerate((b"0x7f000001", b"0X7F000001", b"0x7f.0x0.0x0.0x1")):
                routes = [b"<sip:127.0.0.1:%d;lr>" % h.proxy_port, b"<sip:%s:%d;lr>" % (alias, h.proxy_port)]
                h.send(
                    request(
                        b"MESSAGE",
                        h.uac_port,
                        h.proxy_port,
                        b"alias-%d" % n,
                        to_tag=b"x",
                        routes=routes,
                        uri=b"sip:svc@127.0.0.1:%d" % a,
                    )
                )
                got = await h.uas[a].recv()
                assert got.method == b"MESSAGE" and got.max_forwards == 69, alias
                assert got.get(b"route") is None, "both Route entries name us: both are consumed"
                h.uas[a].answer(got, 200, b"OK")
                assert (await h.uac.recv()).code == 200
            assert await h.uas[a].silent(0.3)

    run(scenario())


def test_it_answers_482_when_the_next_hop_is_itself():
    async def scenario():
        async with Harness(_one) as h:
            assert h.core.hop_refusal("udp", "127.0.0.1", h.proxy_port) == (482, b"Loop Detected")
            assert h.core.hop_refusal("udp", "127.0.0.1", h.dest_ports[0]) is None
            assert h.core.hop_refusal("udp", "224.0.0.1", 5060)[0] == 403
            assert h.core.hop_refusal("udp", "0.0.0.0", 5060)[0] == 403
            assert h.core.hop_refusal("udp", "255.255.255.255", 5060)[0] == 403

    run(scenario())


def test_it_answers_400_to_an_ipv6_next_hop_without_an_ipv6_listener():
    async def scenario():
        async with Harness(_one) as h:
            routes = [b"<sip:127.0.0.1:%d;lr>" % h.proxy_port, b"<sip:[::1]:5099;lr>"]
            for n in range(3):
                h.send(request(b"MESSAGE", h.uac_port, h.proxy_port, b"v6-%d" % n, to_tag=b"x", routes=routes))
                reply = await h.uac.recv()
                assert reply.code == 400 and b"IPv6" in reply.reason
            # and the proxy goes on serving
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"still-there"))
            assert (await h.uac.recv()).code == 200

    run(scenario())


def test_it_sends_nothing_for_an_ipv6_ack_it_cannot_carry():
    async def scenario():
        async with Harness(_one) as h:
            loop = asyncio.get_running_loop()
            errors = []
            loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
            routes = [b"<sip:127.0.0.1:%d;lr>" % h.proxy_port, b"<sip:[::1]:5099;lr>"]
            h.send(request(b"ACK", h.uac_port, h.proxy_port, b"v6-ack", to_tag=b"x", routes=routes))
            h.send(request(b"OPTIONS", h.uac_port, h.proxy_port, b"after-ack"))
            assert (await h.uac.recv()).code == 200
            assert not errors

    run(scenario())


def test_a_request_that_already_passed_through_us_gets_482():
    async def scenario():
        from sip.transaction import _NODE

        our_prefix = b"z9hG4bK" + _NODE  # what every branch of this process starts with

        async with Harness(_one) as h:
            a = h.dest_ports[0]
            ours = b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s1" % (h.proxy_port, our_prefix)
            h.invite(b"looped", extra=(ours,))
            reply = await h.uac.recv()
            assert reply.code == 482
            assert await h.uas[a].silent(0.3)

    run(scenario())


def test_a_destination_that_is_the_proxy_itself_is_never_used():
    async def scenario():
        async with Harness(_one) as h:
            # a table listing the proxy's own address first (a typo in dispatcher.list)
            h.core.apply_table(table([dest(1, h.proxy_port, priority=10), dest(2, h.dest_ports[0], priority=5)], version=2))
            h.invite(b"not-to-self")
            got = await h.uas[h.dest_ports[0]].recv()
            assert got.method == b"INVITE" and len(got.get_all(b"via")) == 2, "straight to the real server"

    run(scenario())


def test_a_wildcard_listener_under_ip_nonlocal_bind_does_not_take_every_address_for_itself(monkeypatch):
    # with net.ipv4.ip_nonlocal_bind=1 (keepalived setups) any bind succeeds, so a bind test
    # would call every next hop "us" and answer 482 to all of them
    from proxy import resolver

    monkeypatch.setattr(resolver, "_nonlocal_bind", lambda version: True)

    async def scenario():
        async with Harness(_one) as h:
            h.core.my_ports[5060] = {"0.0.0.0"}
            assert h.core.hop_refusal("udp", "192.0.2.1", 5060) is None
            assert h.core.hop_refusal("udp", "127.0.0.1", 5060) == (482, b"Loop Detected")

    run(scenario())
