"""The calls a proxy carries are records in Redis: written on the 2xx, removed on the BYE or at
dialog_timeout, batched in memory and flushed by proxy.dialogs, never on the message path; a BYE
of a call this process does not know closes its record wherever it is; a dead node's records are
taken over by a live one; a restarted node counts what its previous process left."""

import asyncio
import time
from types import SimpleNamespace

import redis.asyncio as aioredis

from lbcore.contract import (
    DIALOGS_CLAIM_LUA,
    DIALOGS_FLUSH_LUA,
    decode_dialog,
    decode_dialog_counts,
    dialog_counts_key,
    dialogs_key,
    encode_dialog,
    node_key,
)
from proxy.core import Proxy
from proxy.dialogs import DialogStore
from proxy.tests.harness import dest, run, table


def _core(name="t-dlg", **settings):
    core = Proxy(asyncio.get_running_loop(), name)
    core.apply_table(table([dest(1, 5081, server_id=11), dest(2, 5082, server_id=12)], **settings))
    return core


def _answer(core, call_id, dest_id):
    d = core.view.table.destination(dest_id)
    st = SimpleNamespace(dispatch=True, call_id=call_id, req=SimpleNamespace(from_tag=b"ft-" + call_id), counted=None)
    core.accounting.answered(st, SimpleNamespace(dest=d), SimpleNamespace(to_tag=b"tt-" + call_id))


def _store(core, redis_url):
    return DialogStore(core, core.node_name, lambda: aioredis.from_url(redis_url))


def _counts(redis, node):
    return decode_dialog_counts(redis.hgetall(dialog_counts_key(node)))


def test_answered_calls_are_written_and_ended_ones_removed(redis, redis_url):
    async def scenario():
        core = _core()
        store = _store(core, redis_url)
        client = aioredis.from_url(redis_url)
        store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
        _answer(core, b"c1", 1)
        _answer(core, b"c2", 1)
        _answer(core, b"c3", 2)
        core.accounting.bye(b"c3", object())  # ended before the flush: never written
        assert redis.hlen(dialogs_key("t-dlg")) == 0  # nothing on the message path
        await store.flush(client)
        assert _counts(redis, "t-dlg") == {1: 2}
        rec = decode_dialog(b"c1", redis.hget(dialogs_key("t-dlg"), "c1"))
        assert (rec.destination_id, rec.server_id, rec.setid, rec.from_tag, rec.to_tag, rec.node) == (
            1,
            11,
            1,
            "ft-c1",
            "tt-c1",
            "t-dlg",
        )
        core.accounting.bye(b"c1", object())
        core.accounting.expire(time.time() + core.view.dialog_timeout + 1)  # c2 expires
        await store.flush(client)
        assert _counts(redis, "t-dlg") == {}
        assert redis.hlen(dialogs_key("t-dlg")) == 0
        await client.aclose()

    run(scenario())


def test_a_bye_we_do_not_know_closes_the_record_on_the_node_that_has_it(redis, redis_url):
    async def scenario():
        a, b = _core("t-a"), _core("t-b")
        store_a, store_b = _store(a, redis_url), _store(b, redis_url)
        client = aioredis.from_url(redis_url)
        for store in (store_a, store_b):
            store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
            store._claim_script = client.register_script(DIALOGS_CLAIM_LUA)
        _answer(a, b"c1", 1)
        _answer(a, b"c2", 2)
        await store_a.flush(client)
        redis.set(node_key("t-a"), "{}")  # a's heartbeat: alive, not claimed
        await store_b._claim_dead(client)
        assert store_b.others == ["t-a"] and _counts(redis, "t-a") == {1: 1, 2: 1}
        b.accounting.bye(b"c1", object())  # a's call, its BYE through b
        b.accounting.bye(b"c1", object())  # the other side's BYE too: looked up once
        assert b.accounting.record_removals == [b"c1"]
        await store_b.flush(client)
        assert _counts(redis, "t-a") == {2: 1}
        assert b.accounting.totals["adopted"] == 1
        await client.aclose()

    run(scenario())


def test_a_dead_nodes_records_are_taken_over_and_counted_once(redis, redis_url):
    async def scenario():
        a, b = _core("t-a"), _core("t-b")
        store_a, store_b = _store(a, redis_url), _store(b, redis_url)
        client = aioredis.from_url(redis_url)
        for store in (store_a, store_b):
            store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
            store._claim_script = client.register_script(DIALOGS_CLAIM_LUA)
        _answer(a, b"c1", 1)
        _answer(a, b"c2", 1)
        _answer(a, b"c3", 2)
        await store_a.flush(client)
        b.accounting.bye(b"c3", object())  # its BYE came to b before the takeover
        await store_b._claim_dead(client)  # a has no heartbeat: b takes its records
        assert not redis.exists(dialogs_key("t-a"), dialog_counts_key("t-a"))
        assert {k: v.active for k, v in b.accounting.dests.items()} == {1: 2}
        await store_b.flush(client)
        assert _counts(redis, "t-b") == {1: 2}
        b.accounting.bye(b"c1", object())  # now b's own call
        await store_b.flush(client)
        assert _counts(redis, "t-b") == {1: 1}
        await client.aclose()

    run(scenario())


def test_a_restarted_node_counts_what_its_previous_process_left(redis, redis_url):
    async def scenario():
        old = _core("t-r")
        store = _store(old, redis_url)
        client = aioredis.from_url(redis_url)
        store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
        _answer(old, b"c1", 1)
        _answer(old, b"c2", 2)
        await store.flush(client)
        await client.aclose()

        new = _core("t-r", dialog_timeout_s=60)
        store = _store(new, redis_url)
        task = asyncio.get_running_loop().create_task(store.run())
        deadline = time.monotonic() + 3
        while new.accounting.active < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert {k: v.active for k, v in new.accounting.dests.items()} == {1: 1, 2: 1}
        new.accounting.bye(b"c2", object())
        deadline = time.monotonic() + 3
        while _counts(redis, "t-r") != {1: 1} and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert _counts(redis, "t-r") == {1: 1}
        new.accounting.expire(time.time() + 61)  # the adopted call outlives dialog_timeout
        assert new.accounting.active == 0
        store.stop()  # as proxy.server stops it: the flag, then the cancel
        task.cancel()
        async with asyncio.timeout(5):
            await asyncio.gather(task, return_exceptions=True)

    run(scenario())


def test_an_adopted_call_whose_record_a_sibling_closed_stops_counting_here(redis, redis_url):
    """Under --processes one worker takes a dead node's records over; a BYE that reaches its sibling
    (by its Call-ID) closes the record in this worker's hash. This worker's heartbeat counted the
    call until dialog_timeout; it now drops it once a second, when the record is gone."""

    async def scenario():
        core = _core("t-w0")
        store = DialogStore(core, "t-w0", lambda: aioredis.from_url(redis_url), siblings=("t-w0-1",))
        client = aioredis.from_url(redis_url)
        now = time.time()
        for call_id in ("a1", "a2"):
            redis.hset(dialogs_key("t-w0"), call_id, encode_dialog(1, 11, 1, "f", "t", "dead", now))
        taken = core.accounting.adopt([decode_dialog(c.encode(), redis.hget(dialogs_key("t-w0"), c)) for c in ("a1", "a2")])
        assert taken == 2 and core.accounting.dests[1].active == 2
        redis.hdel(dialogs_key("t-w0"), "a1")  # the sibling relayed a1's BYE
        await store._forget_closed_elsewhere(client)
        assert core.accounting.dests[1].active == 1 and core.accounting.active == 1
        await store._forget_closed_elsewhere(client)  # nothing more to drop
        assert core.accounting.dests[1].active == 1
        core.accounting.bye(b"a2", object())  # a2's BYE here: counted down once
        assert core.accounting.dests[1].active == 0
        await client.aclose()

    run(scenario())


def test_an_idle_store_wakes_for_its_claims_only_and_writes_a_new_call_within_a_flush(redis, redis_url):
    """It used to wake every DIALOG_FLUSH_SECONDS with nothing to write. Now it sleeps until the
    message path changes something, or until its once-a-second claim, and the record still goes
    out within a flush of the 2xx (DIALOG_FLUSH_SECONDS is what a SIGKILLed node may lose)."""
    from lbcore.contract import DIALOG_FLUSH_SECONDS

    async def scenario():
        loop = asyncio.get_running_loop()
        core = _core("t-idle")
        store = _store(core, redis_url)
        flushes = 0
        real_flush = store.flush

        async def counting_flush(client, force=False):
            nonlocal flushes
            flushes += 1
            await real_flush(client, force)

        store.flush = counting_flush
        task = loop.create_task(store.run())
        try:
            await asyncio.sleep(2.2)
            assert flushes <= 4, f"{flushes} flushes in 2.2 s idle (one a claim, each second)"
            answered_at = loop.time()
            _answer(core, b"w1", 1)
            while not redis.hexists(dialogs_key("t-idle"), "w1"):
                assert loop.time() - answered_at < 5, "the record was never written"
                await asyncio.sleep(0.01)
            return loop.time() - answered_at
        finally:
            store.stop()
            await task

    took = run(scenario())
    assert took < DIALOG_FLUSH_SECONDS + 0.4  # the flush window and a Redis round trip, on a loaded host


def test_a_redis_that_lost_our_records_gets_every_call_again_not_a_stamp_that_says_none(redis, redis_url):
    # Found by hand: Redis restarted empty with 6 calls up; the next flush wrote only the "~" stamp,
    # and for as long as the calls lasted the panel read 0 calls, "drained — safe to restart".
    async def scenario():
        core = _core()
        store = _store(core, redis_url)
        client = aioredis.from_url(redis_url)
        store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
        store._claim_script = client.register_script(DIALOGS_CLAIM_LUA)
        redis.hset(dialogs_key("t-prev"), b"adopted-1", encode_dialog(2, 12, 1, "ft", "tt", "t-prev", time.time()))
        redis.hset(dialog_counts_key("t-prev"), "2", 1)
        await store._claim_dead(client)  # a dead node's call, taken over: ours to rewrite too
        for n in range(5):
            _answer(core, b"c%d" % n, 1)
        await store.flush(client)
        core.accounting.bye(b"c4", object())
        await store.flush(client)
        assert _counts(redis, "t-dlg") == {1: 4, 2: 1}
        redis.flushdb()  # what a Redis restart without persistence leaves
        await store.flush(client, force=True)  # the once-a-second stamp: nothing changed since
        assert _counts(redis, "t-dlg") == {1: 4, 2: 1}
        assert set(redis.hkeys(dialogs_key("t-dlg"))) == {b"c0", b"c1", b"c2", b"c3", b"adopted-1"}
        assert redis.hget(dialog_counts_key("t-dlg"), "~") is not None
        # and with changes waiting when it happens: they go out with the rest, none twice
        redis.flushdb()
        _answer(core, b"c9", 2)
        core.accounting.bye(b"c0", object())
        await store.flush(client)
        assert _counts(redis, "t-dlg") == {1: 3, 2: 2}
        await client.aclose()

    run(scenario())
