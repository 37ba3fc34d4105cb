from proxy.tests.harness import Harness, dest, request, run


def _two(ports):
    return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:2])], ports[:2]


def test_it_forwards_cancel_to_the_ringing_branch_and_relays_487():
    async def scenario():
        async with Harness(_two) as h:
            a = h.dest_ports[0]
            h.invite(b"cancel-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            h.send(request(b"CANCEL", h.uac_port, h.proxy_port, b"cancel-1", branch=b"z9hG4bK-cancel-1-1INVITE"))
            ok = await h.uac.recv()
            assert ok.code == 200 and ok.cseq == (1, b"CANCEL")
            cancel = await h.uas[a].recv()
            assert cancel.method == b"CANCEL" and cancel.via.branch == inv.via.branch
            h.uas[a].answer(cancel, 200, b"OK")
            h.uas[a].answer(inv, 487, b"Request Terminated")
            assert (await h.uac.recv()).code == 487
            assert (await h.uas[a].recv()).method == b"ACK"
            await h.uas[h.dest_ports[1]].silent(0.2)  # a cancelled call never fails over

    run(scenario())


def test_it_answers_481_to_a_cancel_it_cannot_match():
    async def scenario():
        async with Harness(_two) as h:
            h.send(request(b"CANCEL", h.uac_port, h.proxy_port, b"nothing"))
            assert (await h.uac.recv()).code == 481

    run(scenario())
