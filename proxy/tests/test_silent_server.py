"""A server that stops answering without an ICMP error (a hung Asterisk, a host that lost power)
is left as soon as nothing at all comes back from it, well before trying_timeout; a live server
that only ignores one INVITE keeps the full trying_timeout for it."""

import asyncio

import pytest

from proxy import silence
from proxy.silence import FLOOR, PILE_GRACE, PILE_LIMIT, SilenceWatch
from proxy.tests.harness import Harness, dest, run
from proxy.transactions import CALLING


def two_servers(ports):  # priority order: the first gets every call while usable
    return [dest(i + 1, p, priority=10 - i) for i, p in enumerate(ports[:2])], ports[:2]


def test_it_leaves_a_silent_server_long_before_trying_timeout():
    async def scenario():
        # trying_timeout 60 s: a failover within the recv() below can only be the silence rule
        async with Harness(two_servers, trying_timeout_ms=60000) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"hung-1")
            await h.uas[a].recv()
            inv = await h.uas[b].recv(timeout=5)
            assert inv.call_id == b"hung-1"
            assert h.suspects == []  # avoided, not yet suspect: that waits for trying_timeout
            h.invite(b"hung-2")  # new calls avoid it meanwhile
            assert (await h.uas[b].recv(timeout=5)).call_id == b"hung-2"

    run(scenario())


def test_a_server_still_silent_at_trying_timeout_is_marked_suspect():
    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=400) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"hung-1")
            await h.uas[a].recv()
            await h.uas[b].recv(timeout=5)
            for _ in range(100):
                if h.suspects:
                    break
                await asyncio.sleep(0.05)  # polling the hook's list: no event to await in the harness
            assert h.suspects[0][0] == 1 and "nothing heard" in h.suspects[0][1]

    run(scenario())


def test_a_silent_server_that_answers_late_is_used_again_and_never_suspect():
    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=1500) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"slow-1")
            late = await h.uas[a].recv()
            moved = await h.uas[b].recv(timeout=5)  # failed over while a was silent
            h.uas[b].answer(moved, 180, b"Ringing")
            h.uas[a].answer(late, 100, b"Trying")  # a starved host's server, late but alive
            assert (await h.uas[a].recv(timeout=5)).method == b"CANCEL"  # for the abandoned branch
            h.invite(b"slow-2")
            again = await h.uas[a].recv(timeout=5)  # a takes calls again (priority order)
            assert again.call_id == b"slow-2"
            h.uas[a].answer(again, 180, b"Ringing")
            await asyncio.sleep(1.6)  # past trying_timeout of the first INVITE
            assert h.suspects == []

    run(scenario())


def test_every_invite_waiting_on_the_silent_server_fails_over_together():
    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=60000) as h:
            a, b = h.dest_ports[:2]
            for n in range(3):
                h.invite(b"hung-%d" % n)
            sent = {(await h.uas[a].recv()).call_id for _ in range(3)}
            moved = {(await h.uas[b].recv(timeout=5)).call_id for _ in range(3)}
            assert sent == moved == {b"hung-0", b"hung-1", b"hung-2"}

    run(scenario())


def test_with_no_other_server_a_silent_one_keeps_its_calls_until_trying_timeout():
    def one_server(ports):
        return [dest(1, ports[0], priority=10)], ports[:1]

    async def scenario():
        async with Harness(one_server, trying_timeout_ms=1500) as h:
            a = h.dest_ports[0]
            h.invite(b"only-1")
            inv = await h.uas[a].recv()
            await asyncio.sleep(0.4)  # past the silence deadline
            h.invite(b"only-2")  # not refused: the only server is not avoided
            assert (await h.uas[a].recv(skip=(100,))).call_id in (b"only-2", inv.call_id)

    run(scenario())


def test_a_live_server_that_ignores_one_invite_keeps_the_full_trying_timeout():
    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=1500) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"ignored-1")
            ignored = await h.uas[a].recv()
            h.invite(b"answered-1")
            answered = await h.uas[a].recv(skip=(100,))
            if answered.call_id == b"ignored-1":  # a retransmission came first
                answered = await h.uas[a].recv()
            h.uas[a].answer(answered, 180, b"Ringing")
            assert (await h.uac.recv()).code == 180
            # past the silence deadline, well inside trying_timeout: still with the first server
            await h.uas[b].silent(max(0.5, 3 * FLOOR))
            assert h.suspects == []
            inv = await h.uas[b].recv(timeout=5)  # then trying_timeout itself fails it over
            assert inv.call_id == ignored.call_id
            assert "no provisional within 1500 ms" in h.suspects[0][1]

    run(scenario())


async def invites_to(peer, n):
    return [(await peer.recv(timeout=5)).call_id for _ in range(n)]


async def pile_up(h, port, prefix):
    """PILE_LIMIT INVITEs reach the server at `port`, which answers none; then the grace passes.
    Returns what it received, in order."""
    for n in range(PILE_LIMIT):
        h.invite(prefix + b"-%d" % n)
    got = [await h.uas[port].recv(timeout=5) for _ in range(PILE_LIMIT)]
    await asyncio.sleep(2 * PILE_GRACE)  # the bound is a duration without a reply: only time passes
    return got


def count_bound(monkeypatch, scenario):
    """`scenario(h, a, b)` with two servers in priority order and the time rule (FLOOR) moved out
    of the way: what is left to keep INVITEs off a silent server is the count."""
    monkeypatch.setattr(silence, "FLOOR", 30.0)

    async def main():
        async with Harness(two_servers, trying_timeout_ms=60000) as h:
            await scenario(h, *h.dest_ports[:2])

    run(main())


def test_a_silent_server_gets_at_most_three_new_invites_however_fast_they_come(monkeypatch):
    # issue 15: SIPp sent 15 calls in the 104 ms after a server hung and 5 of them reached it
    async def scenario(h, a, b):
        piled = await pile_up(h, a, b"hung")
        assert [m.call_id for m in piled] == [b"hung-%d" % n for n in range(PILE_LIMIT)]
        for n in range(PILE_LIMIT, PILE_LIMIT + 5):
            h.invite(b"hung-%d" % n)
        assert sorted(await invites_to(h.uas[b], 5)) == [b"hung-%d" % n for n in range(PILE_LIMIT, PILE_LIMIT + 5)]
        assert await h.uas[a].silent(0.2)  # (its INVITEs' first retransmission is due at 500 ms)
        assert h.suspects == []  # only avoided: suspect is trying_timeout's verdict

    count_bound(monkeypatch, scenario)


def test_a_reply_of_any_kind_ends_the_bound(monkeypatch):
    async def scenario(h, a, b):
        first = (await pile_up(h, a, b"slow"))[0]
        h.invite(b"elsewhere")
        assert await invites_to(h.uas[b], 1) == [b"elsewhere"]
        h.uas[a].answer(first, 180, b"Ringing")  # slow, not dead
        assert (await h.uac.recv(skip=(100,))).code == 180
        h.invite(b"back")
        assert await invites_to(h.uas[a], 1) == [b"back"]

    count_bound(monkeypatch, scenario)


def test_the_bound_never_refuses_a_call_when_every_server_is_piling(monkeypatch):
    # our own loop fell behind and every reply waits unread: all look silent, all stay in
    async def scenario(h, a, b):
        await pile_up(h, a, b"a")
        await pile_up(h, b, b"b")  # a piles: the next three go to b, which piles too
        h.invite(b"still-routed")
        assert await invites_to(h.uas[a], 1) == [b"still-routed"]  # priority order, as without the bound
        assert await h.uac.silent(0.1)  # no 503 (100 Trying skipped)

    count_bound(monkeypatch, scenario)


def test_the_count_starts_again_after_trying_timeout():
    watch = SilenceWatch()
    addr = ("127.0.0.1", 5080)
    for _ in range(PILE_LIMIT - 1):
        watch.invite_sent(addr, 10.0)
    assert not watch.piling(addr, 10.5, 0.5)  # two: under the limit
    watch.invite_sent(addr, 10.0)
    assert not watch.piling(addr, 10.0 + PILE_GRACE / 2, 0.5)  # a live server may take that long
    assert watch.piling(addr, 10.0 + PILE_GRACE * 1.01, 0.5)
    assert not watch.piling(addr, 10.5, 0.5)  # past trying_timeout: suspect or quiet by now, or it restarted
    assert addr not in watch.unanswered


def test_processes_share_the_bound_of_their_address():
    addr = ("127.0.0.1", 5080)
    for processes, limit in ((1, PILE_LIMIT), (2, 1), (3, 1), (8, 1)):
        watch = SilenceWatch()
        watch.share(processes)
        for _ in range(limit):
            assert not watch.piling(addr, 10.0 + PILE_GRACE * 1.01, 0.5)
            watch.invite_sent(addr, 10.0)
        assert watch.piling(addr, 10.0 + PILE_GRACE * 1.01, 0.5), processes


class Branch:
    def __init__(self, addr, sent_at):
        self.addr, self.sent_at, self.is_invite, self.state = addr, sent_at, True, CALLING


def test_the_deadline_follows_the_slowest_recent_first_reply_within_its_bounds():
    watch = SilenceWatch()
    addr = ("127.0.0.1", 5080)
    assert watch.deadline(addr, 0.5) == FLOOR
    watch.replied(Branch(addr, 10.0), 10.06)  # 60 ms to the first reply: 4 x 60 ms
    assert abs(watch.deadline(addr, 0.5) - 0.24) < 1e-9
    watch.replied(Branch(addr, 11.0), 11.3)
    assert watch.deadline(addr, 0.5) == 0.5  # never past trying_timeout
    assert watch.silent_since(addr, 11.31) and not watch.silent_since(addr, 11.29)


@pytest.mark.parametrize(("code", "reason"), [(100, b"Trying"), (180, b"Ringing")])
def test_the_calls_a_hung_server_had_answered_move_on_once_it_is_found_hung(code, reason):
    """A call whose INVITE the server took (100, or 180) just before it hung waited fr_inv_timer
    (30 s) for an answer that could not come: the failed setup in CI's SIGSTOP run. Once the server
    is found silent for trying_timeout with a new INVITE waiting, those calls move on too, with a
    CANCEL for the server in case it wakes up."""

    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=400) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"taken-1")
            taken = await h.uas[a].recv()
            h.uas[a].answer(taken, code, reason)
            if code > 100:
                assert (await h.uac.recv()).code == code
            # a hangs: the next INVITE gets nothing back, and fails over after the silence deadline.
            # (A millisecond apart: the loop's clock counts in them, and "nothing heard since the
            # INVITE left" needs the last reply to be older than the INVITE.)
            await asyncio.sleep(0.01)
            h.invite(b"hung-2")
            await h.uas[a].recv()
            hung = await h.uas[b].recv(timeout=5)
            assert hung.call_id == b"hung-2"
            h.uas[b].answer(hung, 100, b"Trying")
            # at trying_timeout a is suspect, and the call it had taken goes on to b
            moved = await h.uas[b].recv(timeout=2)
            assert moved.call_id == b"taken-1", moved
            h.uas[b].answer(moved, 180, b"Ringing")
            cancel = await h.uas[a].recv(timeout=2)
            assert (cancel.method, cancel.call_id) == (b"CANCEL", b"taken-1")
            assert h.suspects and h.suspects[0][0] == 1

    run(scenario())


def test_a_server_answering_other_calls_keeps_its_ringing_ones():
    async def scenario():
        async with Harness(two_servers, trying_timeout_ms=400) as h:
            a, b = h.dest_ports[:2]
            h.invite(b"ringing-1")
            ringing = await h.uas[a].recv()
            h.uas[a].answer(ringing, 180, b"Ringing")
            for n in range(4):  # a answers every new call, 150 ms apart: alive, however long one rings
                h.invite(b"other-%d" % n)
                other = await h.uas[a].recv()
                h.uas[a].answer(other, 100, b"Trying")
                await asyncio.sleep(0.15)  # spreading the calls over two trying_timeouts
            assert await h.uas[b].silent(within=0.3)
            assert h.suspects == []

    run(scenario())
