"""A server listed in several sets is one machine: a suspect mark for one listing marks them all."""

from proxy.tests.harness import Harness, dest, run


def _same_server_twice(ports):
    a, b = ports[:2]
    # ids 1 and 3 are the same Asterisk (as ast1 is in both of the seed's sets)
    return [dest(1, a, priority=10), dest(2, b, priority=5), dest(3, a, priority=1)], [a, b]


def test_a_failure_on_one_listing_marks_every_listing_of_that_server():
    async def scenario():
        async with Harness(_same_server_twice) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"sib-1")
            inv = await h.uas[a].recv()
            h.uas[a].answer(inv, 503, b"Service Unavailable")
            await h.uas[a].recv()  # the hop-by-hop ACK
            h.uas[b].answer(await h.uas[b].recv(), 200, b"OK")
            assert (await h.uac.recv()).code == 200
            assert sorted(dest_id for dest_id, _ in h.suspects) == [1, 3]
            assert not h.core.is_usable(h.core.view.table.destination(3))

    run(scenario())
