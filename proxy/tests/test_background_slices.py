"""The record writers hand the loop back while they encode a pile: datagrams that arrive during a
big flush are read in between, not after it (proxy/slices.py).

Under two CPU burners at 1,000 calls/s the call-record flush used to encode a second's pile in
one piece: 50-70 ms of CPU with the sockets unread, in the setup p99. Each test piles up
thousands of records, starts the flush, and checks that a callback queued beside it runs before
the encoding is over. Slices are made zero-length so the test does not depend on CPU speed."""

import asyncio

import redis.asyncio as aioredis

from lbcore import contract
from lbcore.contract import DIALOGS_FLUSH_LUA, dialogs_key
from proxy import dialogs as dialogs_module
from proxy import slices
from proxy.calllog import CallLog
from proxy.tests.harness import run
from proxy.tests.test_dialog_records import _answer, _core, _store

PILE = 3000


def _piled(node, redis_url):
    """A proxy core with PILE answered calls waiting for the dialog flush, its store and a client."""
    core = _core(node)
    store = _store(core, redis_url)
    client = aioredis.from_url(redis_url)
    store._flush_script = client.register_script(DIALOGS_FLUSH_LUA)
    for i in range(PILE):
        _answer(core, b"%s-%d" % (node.encode(), i), 1)
    return core, store, client


def test_call_records_are_encoded_in_slices(redis, redis_url, monkeypatch):
    monkeypatch.setattr(slices, "SLICE_S", 0.0)

    async def scenario():
        core = _core("t-slices-log")
        log = CallLog(core, core.node_name)
        for i in range(PILE):
            log.ended(b"pile-%d" % i, None)
        seen = []
        asyncio.get_running_loop().call_soon(lambda: seen.append(len(log.pending) + log.written))
        client = aioredis.from_url(redis_url)
        try:
            await log.flush(client)
        finally:
            await client.aclose()
        return seen, log.written

    seen, written = run(scenario())
    assert written == PILE  # all of it still written
    assert seen and seen[0] < PILE, f"the loop ran only after {seen} of {PILE} records were encoded"


def test_dialog_records_are_encoded_in_slices(redis, redis_url, monkeypatch):
    monkeypatch.setattr(slices, "SLICE_S", 0.0)
    encoded = []
    real = contract.encode_dialog

    def counting(*args):
        encoded.append(1)
        return real(*args)

    monkeypatch.setattr(dialogs_module, "encode_dialog", counting)

    async def scenario():
        core, store, client = _piled("t-slices-dlg", redis_url)
        seen = []
        asyncio.get_running_loop().call_soon(lambda: seen.append(len(encoded)))
        try:
            await store.flush(client)
        finally:
            await client.aclose()
        return seen

    seen = run(scenario())
    assert redis.hlen(dialogs_key("t-slices-dlg")) == PILE
    assert seen and seen[0] < PILE, f"the loop ran only after {seen} of {PILE} dialog records were encoded"


def test_a_cancelled_dialog_flush_keeps_its_batch(redis, redis_url, monkeypatch):
    """Cancelled between two slices (the proxy stopping), the batch goes back to be sent later."""
    monkeypatch.setattr(slices, "SLICE_S", 0.0)

    async def scenario():
        core, store, client = _piled("t-slices-cancel", redis_url)
        task = asyncio.ensure_future(store.flush(client))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        left = len(core.accounting.record_adds)
        await store.flush(client)
        await client.aclose()
        return left

    left = run(scenario())
    assert left == PILE
    assert redis.hlen(dialogs_key("t-slices-cancel")) == PILE


def test_slicer_yields_only_when_its_slice_is_spent(monkeypatch):
    monkeypatch.setattr(slices, "SLICE_S", 3600.0)

    async def scenario():
        slicer = slices.Slicer()
        ran = []
        asyncio.get_running_loop().call_soon(lambda: ran.append(slicer.count))
        for _ in range(10 * slices.CHECK_EVERY):
            await slicer.tick()
        return ran

    # within its slice it never hands the loop back: the callback runs after the last tick
    assert run(scenario()) in ([], [10 * slices.CHECK_EVERY])
