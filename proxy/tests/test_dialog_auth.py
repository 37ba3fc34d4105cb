"""In-dialog relaying is for dialogs we record-routed: an untrusted address gets a stateless
403 unless its top Route is our Record-Route, signed for this Call-ID and tag. No open relay,
no reflection through forged responses."""

from proxy.tests.harness import Harness, dest, peer_at, request, run

UNTRUSTED = "127.0.0.66"
ONLY_THE_UAC_IS_TRUSTED = {"trusted_networks": ["127.0.0.1/32"]}


def _one(ports):
    return [dest(1, ports[0])], ports[:2]  # ports[1]: a peer that is no destination (a victim)


def _forged(method, src_port, proxy_port, victim_port, call_id, routes=None, cseq=1):
    routes = routes or [b"<sip:127.0.0.1:%d;lr>" % proxy_port, b"<sip:127.0.0.1:%d;lr>" % victim_port]
    return request(
        method, src_port, proxy_port, call_id, cseq=cseq, to_tag=b"x", routes=routes, uri=b"sip:victim@127.0.0.1:%d" % victim_port
    )


def test_it_refuses_forged_in_dialog_requests_from_an_untrusted_address_without_state():
    async def scenario():
        async with Harness(_one, **ONLY_THE_UAC_IS_TRUSTED) as h:
            victim = h.uas[h.dest_ports[1]]
            port = next(h.ports)
            attacker = await peer_at(UNTRUSTED, port)
            try:
                for n, method in enumerate((b"MESSAGE", b"INVITE", b"BYE", b"NOTIFY")):
                    attacker.send(_forged(method, port, h.proxy_port, victim.port, b"forged-%d" % n), h.proxy_port)
                    reply = await attacker.recv(skip=(100,))
                    assert reply.code == 403, (method, reply.code)
                assert await victim.silent(0.3)
                assert not h.core.servers, "a refused request must cost no transaction"
                assert await attacker.silent(0.8), "a refusal is sent once, never retransmitted at a forged source"
            finally:
                attacker.close()

    run(scenario())


def test_it_relays_what_it_record_routed_for_an_untrusted_party():
    async def scenario():
        async with Harness(_one, **ONLY_THE_UAC_IS_TRUSTED) as h:
            routes = await h.call_up(b"call-signed", h.dest_ports[0])
            port = next(h.ports)
            callee = await peer_at(UNTRUSTED, port)  # e.g. an Asterisk outside trusted_networks
            try:
                bye = request(
                    b"BYE",
                    port,
                    h.proxy_port,
                    b"call-signed",
                    cseq=2,
                    to_tag=b"caller",
                    routes=routes,
                    uri=b"sip:caller@127.0.0.1:%d" % h.uac_port,
                )
                # the callee hangs up: its From carries its own tag, the INVITE's from-tag is in To
                bye = bye.replace(b"From: <sip:caller@127.0.0.1:%d>;tag=caller" % port, b"From: <sip:service@127.0.0.1>;tag=uas")
                callee.send(bye, h.proxy_port)
                got = await h.uac.recv()
                assert got.method == b"BYE" and got.call_id == b"call-signed"
            finally:
                callee.close()

    run(scenario())


def test_it_refuses_a_signature_made_for_another_call():
    async def scenario():
        async with Harness(_one, **ONLY_THE_UAC_IS_TRUSTED) as h:
            routes = await h.call_up(b"call-real", h.dest_ports[0])
            victim = h.uas[h.dest_ports[1]]
            port = next(h.ports)
            attacker = await peer_at(UNTRUSTED, port)
            try:
                stolen = [routes[0], b"<sip:127.0.0.1:%d;lr>" % victim.port]
                attacker.send(_forged(b"MESSAGE", port, h.proxy_port, victim.port, b"call-other", routes=stolen), h.proxy_port)
                assert (await attacker.recv()).code == 403
                tampered = [routes[0].replace(b"lbs=", b"lbs=0"), b"<sip:127.0.0.1:%d;lr>" % victim.port]
                attacker.send(_forged(b"MESSAGE", port, h.proxy_port, victim.port, b"call-real", routes=tampered), h.proxy_port)
                assert (await attacker.recv()).code == 403
                assert await victim.silent(0.3)
            finally:
                attacker.close()

    run(scenario())


def test_it_drops_an_untrusted_ack_without_our_signed_route():
    async def scenario():
        async with Harness(_one, **ONLY_THE_UAC_IS_TRUSTED) as h:
            victim = h.uas[h.dest_ports[1]]
            port = next(h.ports)
            attacker = await peer_at(UNTRUSTED, port)
            try:
                attacker.send(_forged(b"ACK", port, h.proxy_port, victim.port, b"forged-ack"), h.proxy_port)
                assert await victim.silent(0.3)
            finally:
                attacker.close()

    run(scenario())


def test_it_drops_a_stray_response_that_only_claims_our_via():
    async def scenario():
        async with Harness(_one, **ONLY_THE_UAC_IS_TRUSTED) as h:
            port, victim_port = next(h.ports), next(h.ports)
            victim = await peer_at("127.0.0.77", victim_port)  # untrusted: the reflection's target
            attacker = await peer_at(UNTRUSTED, port)
            try:
                for branch in (b"z9hG4bKforged", b"z9hG4bK-lbs-1"):
                    stray = (
                        b"SIP/2.0 200 OK\r\n"
                        b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s\r\n"
                        b"Via: SIP/2.0/UDP 127.0.0.77:%d;branch=z9hG4bKvictim\r\n"
                        b"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\n"
                        b"Call-ID: stray\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
                    ) % (h.proxy_port, branch, victim_port)
                    attacker.send(stray, h.proxy_port)
                assert await victim.silent(0.3, skip=())
                # another node's branch (a 2xx retransmitted to the node that took over a dead
                # node's address) still reaches a trusted caller
                h.uas[h.dest_ports[0]].send(
                    (
                        b"SIP/2.0 200 OK\r\n"
                        b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK0badc0de1\r\n"
                        b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKcaller\r\n"
                        b"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>;tag=b\r\n"
                        b"Call-ID: taken-over\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
                    )
                    % (h.proxy_port, h.uac_port),
                    h.proxy_port,
                )
                assert (await h.uac.recv()).call_id == b"taken-over"
            finally:
                attacker.close()
                victim.close()

    run(scenario())
