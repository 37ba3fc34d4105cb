from proxy.tests.harness import Harness, dest, request, run


def _three(ports):
    return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:3])], ports[:3]


def test_it_relays_a_whole_call_and_counts_it_active_until_bye():
    async def scenario():
        async with Harness(_three) as h:
            a = h.dest_ports[0]
            h.invite(b"call-1")
            trying = await h.uac.recv(skip=())
            assert trying.code == 100
            inv = await h.uas[a].recv()
            assert inv.method == b"INVITE"
            assert inv.max_forwards == 69
            sig = h.core.dialog_sig(b"call-1", b"caller")
            assert inv.get_all(b"record-route") == [b"<sip:127.0.0.1:%d;lr;lbs=%s>" % (h.proxy_port, sig)]
            assert len(inv.get_all(b"via")) == 2
            h.uas[a].answer(inv, 180, b"Ringing")
            ringing = await h.uac.recv()
            assert ringing.code == 180 and len(ringing.get_all(b"via")) == 1
            h.uas[a].answer(inv, 200, b"OK")
            ok = await h.uac.recv()
            assert ok.code == 200
            assert h.core.accounting.dests[1].active == 1
            routes = ok.get_all(b"record-route")
            h.send(
                request(b"ACK", h.uac_port, h.proxy_port, b"call-1", to_tag=b"uas", routes=routes, uri=b"sip:127.0.0.1:%d" % a)
            )
            ack = await h.uas[a].recv()
            assert ack.method == b"ACK" and ack.get(b"route") is None
            h.send(
                request(
                    b"BYE", h.uac_port, h.proxy_port, b"call-1", cseq=2, to_tag=b"uas", routes=routes, uri=b"sip:127.0.0.1:%d" % a
                )
            )
            bye = await h.uas[a].recv()
            assert bye.method == b"BYE"
            h.uas[a].answer(bye, 200, b"OK", contact=False)
            assert (await h.uac.recv()).code == 200
            assert h.core.accounting.dests[1].active == 0
            assert h.core.accounting.totals["answered"] == 1

    run(scenario())


def test_it_counts_a_retransmitted_2xx_once():
    async def scenario():
        async with Harness(_three) as h:
            a = h.dest_ports[0]
            h.invite(b"call-2")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 200, b"OK")
            h.uas[a].answer(inv, 200, b"OK")
            assert (await h.uac.recv()).code == 200
            assert (await h.uac.recv()).code == 200  # relayed again: the caller may have lost it
            assert h.core.accounting.dests[1].active == 1
            assert h.core.accounting.totals["answered"] == 1

    run(scenario())


def test_it_absorbs_a_retransmitted_invite():
    async def scenario():
        async with Harness(_three) as h:
            a = h.dest_ports[0]
            h.invite(b"call-3")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            h.invite(b"call-3")  # same branch: a retransmission
            assert (await h.uac.recv()).code == 180  # the last response again
            await h.uas[a].silent(0.3)  # nothing new downstream
            assert h.core.accounting.totals["invites"] == 1

    run(scenario())
