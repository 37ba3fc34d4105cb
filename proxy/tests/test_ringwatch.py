"""A server that hangs while it only holds ringing calls (no new INVITE goes to it, so the silence
watch has nothing to go on) is asked with an OPTIONS; unanswered, its calls move on instead of
ringing to fr_inv_timer and failing with 408."""

import time

import pytest

from lbcore.contract import UP, Health
from proxy import ringwatch
from proxy.silence import FACTOR, SilenceWatch
from proxy.tests.harness import Harness, dest, run


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(ringwatch, "QUIET_S", 0.3)
    monkeypatch.setattr(ringwatch, "ANSWER_S", 0.8)  # past T1: one resend


def two_servers(probing=True):
    def build(ports):  # priority order: the first gets every call while usable
        return [dest(i + 1, p, priority=10 - i, probing=probing) for i, p in enumerate(ports[:2])], ports[:2]

    return build


async def ringing_on_a(h, call_id=b"ringing-1"):
    a, b = h.dest_ports[:2]
    h.invite(call_id)
    inv = await h.uas[a].recv()
    h.uas[a].answer(inv, 180, b"Ringing")
    assert (await h.uac.recv()).code == 180
    return a, b, inv


def test_a_server_hung_while_ringing_is_asked_and_its_calls_move_on():
    async def scenario():
        # fr_inv_timer 60 s: before this change the call rang on a until then and failed with 408
        async with Harness(two_servers(), fr_inv_timer_ms=60000) as h:
            a, b, _ = await ringing_on_a(h)
            question = await h.uas[a].recv(timeout=3)  # a hangs: it reads this but never answers
            assert question.method == b"OPTIONS"
            again = await h.uas[a].recv(timeout=2)  # UDP: asked again at T1
            assert again.method == b"OPTIONS" and again.via.branch == question.via.branch
            moved = await h.uas[b].recv(timeout=3)
            assert (moved.method, moved.call_id) == (b"INVITE", b"ringing-1")
            cancel = await h.uas[a].recv(timeout=2)  # in case it wakes up
            assert (cancel.method, cancel.call_id) == (b"CANCEL", b"ringing-1")
            assert h.suspects and h.suspects[0][0] == 1 and "OPTIONS unanswered" in h.suspects[0][1]
            h.uas[b].answer(moved, 200, b"OK")
            assert (await h.uac.recv()).code == 200

    run(scenario())


@pytest.mark.parametrize(("code", "reason"), [(200, b"OK"), (405, b"Method Not Allowed")])
def test_a_server_that_answers_the_question_keeps_its_ringing_calls(code, reason):
    async def scenario():
        async with Harness(two_servers(), fr_inv_timer_ms=60000) as h:
            a, b, _ = await ringing_on_a(h)
            for _ in range(2):  # asked again after each quiet spell, alive each time
                question = await h.uas[a].recv(timeout=3)
                assert question.method == b"OPTIONS"
                h.uas[a].answer(question, code, reason, contact=False)
            assert await h.uas[b].silent(within=0.8)
            assert h.suspects == []

    run(scenario())


def test_an_answer_from_another_address_is_not_the_servers():
    async def scenario():
        async with Harness(two_servers(), fr_inv_timer_ms=60000) as h:
            a, b, _ = await ringing_on_a(h)
            question = await h.uas[a].recv(timeout=3)
            h.uas[b].answer(question, 200, b"OK", contact=False)  # b forges a's answer
            moved = await h.uas[b].recv(timeout=3)
            assert (moved.method, moved.call_id) == (b"INVITE", b"ringing-1")

    run(scenario())


def test_a_server_the_prober_reports_up_is_asked_without_the_probing_flag():
    """Probing mode 1 pings every destination, P flag or not (the seed's list has flags 0)."""

    async def scenario():
        async with Harness(two_servers(probing=False), fr_inv_timer_ms=60000) as h:
            h.core.set_health(1, Health(state=UP, since=time.time()))
            a, b, _ = await ringing_on_a(h)
            assert (await h.uas[a].recv(timeout=3)).method == b"OPTIONS"
            moved = await h.uas[b].recv(timeout=3)
            assert (moved.method, moved.call_id) == (b"INVITE", b"ringing-1")

    run(scenario())


def test_a_server_not_known_to_answer_options_is_never_asked():
    """Neither flagged for pinging nor reported up by the prober (a carrier that drops OPTIONS from
    strangers): its silence proves nothing, so its ringing calls ring on."""

    async def scenario():
        async with Harness(two_servers(probing=False), fr_inv_timer_ms=60000) as h:
            a, b, _ = await ringing_on_a(h)
            assert await h.uas[a].silent(within=1.2)
            assert await h.uas[b].silent(within=0.1)
            assert h.core.ringwatch.sent == 0

    run(scenario())


def test_a_server_slow_to_answer_lately_gets_longer_to_answer_the_question():
    watch = SilenceWatch()
    addr = ("127.0.0.1", 5080)
    assert ringwatch.answer_wait(watch, addr) == ringwatch.ANSWER_S
    watch.peak[addr] = 0.5  # its first replies took up to 500 ms lately
    assert ringwatch.answer_wait(watch, addr) == pytest.approx(FACTOR * 0.5)
