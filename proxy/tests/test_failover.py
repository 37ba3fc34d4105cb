from proxy.tests.harness import Harness, dest, run


def _three(ports):
    return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:3])], ports[:3]


def test_it_fails_over_on_503_and_marks_the_destination_suspect():
    async def scenario():
        async with Harness(_three) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"fo-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 503, b"Service Unavailable")
            ack = await h.uas[a].recv()
            assert ack.method == b"ACK" and ack.via.branch == inv.via.branch  # hop-by-hop ACK
            inv2 = await h.uas[b].recv()
            assert inv2.method == b"INVITE" and inv2.via.branch != inv.via.branch
            h.uas[b].answer(inv2, 200, b"OK")
            assert (await h.uac.recv()).code == 200
            assert h.suspects == [(1, "replied 503")]
            assert h.core.accounting.totals["failovers"] == 1
            h.invite(b"fo-2")  # the suspect takes no new calls
            assert (await h.uas[b].recv()).method == b"INVITE"
            await h.uas[a].silent(0.2)

    run(scenario())


def test_it_relays_busy_without_failover():
    async def scenario():
        async with Harness(_three) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"busy-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 486, b"Busy Here")
            assert (await h.uac.recv()).code == 486
            await h.uas[b].silent(0.2)
            assert h.suspects == []

    run(scenario())


def test_it_relays_the_last_final_response_when_none_is_left():
    async def scenario():
        async with Harness(_three) as h:
            for port in h.dest_ports[:3]:
                inv = None
                if port == h.dest_ports[0]:
                    h.invite(b"all-503")
                inv = await h.uas[port].recv()
                h.uas[port].answer(inv, 503, b"Service Unavailable", tag=b"t%d" % port)
            resp = await h.uac.recv()
            assert resp.code == 503 and resp.to_tag == b"t%d" % h.dest_ports[2]

    run(scenario())


def test_it_answers_503_with_retry_after_when_nothing_is_usable():
    async def scenario():
        async with Harness(_three) as h:
            for d in h.core.view.table.sets[1].destinations:
                h.core.mark_suspect(d, 503, "test", b"")
            h.invite(b"none-1")
            resp = await h.uac.recv()
            assert resp.code == 503 and resp.get(b"retry-after") == b"5"
            assert h.core.accounting.totals["sent_503"] == 1

    run(scenario())
