"""A Redis writer whose cancellation is eaten inside a command still ends.

redis-py can swallow a cancel that lands while a command is in flight: the command returns as if
nothing happened. The dialog-record writer then went round its `while not stopped` loop for ever,
its task "cancelling" and never done; a test that cancelled it and waited held CI for 90 minutes.
Found by cancelling DialogStore.run against the real Redis at random moments: about 1 cancel in
500 was eaten (the task still ran 3 s later), always inside a command (`_load_own`, `flush`).

Here a client that eats every cancel makes that deterministic. Each loop must end within a turn.
"""

import asyncio

import pytest

from proxy.calllog import CallLog
from proxy.dialogs import DialogStore
from proxy.tests.harness import run
from proxy.tests.test_dialog_records import _core


class EatingClient:
    """Answers like an empty Redis, and eats a cancel that lands in a command."""

    def __init__(self):
        self.in_command = asyncio.Event()
        self.eaten = 0

    def register_script(self, _source):
        async def script(keys=None, args=None, client=None):
            return await self._command(None)

        return script

    async def hgetall(self, _key):
        return await self._command({})

    async def scan_iter(self, match=None, count=None):
        await self._command(None)
        return
        yield  # an async generator with nothing in it

    async def aclose(self):
        pass

    async def _command(self, result):
        self.in_command.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.eaten += 1  # what redis-py can do: the command completes and nobody hears of the cancel
        return result


async def _cancel_in_a_command(task, client):
    await asyncio.wait_for(client.in_command.wait(), 2)
    task.cancel()
    try:
        async with asyncio.timeout(3):
            await asyncio.gather(task, return_exceptions=True)
    except TimeoutError:
        pytest.fail(f"still running 3 s after its cancel (eaten {client.eaten} times): {task!r}")
    assert client.eaten == 1 and task.cancelled()


def test_the_dialog_record_writer_ends_when_its_cancel_is_eaten():
    async def scenario():
        client = EatingClient()
        store = DialogStore(_core("t-eaten"), "t-eaten", lambda: client)
        await _cancel_in_a_command(asyncio.get_running_loop().create_task(store.run()), client)

    run(scenario())


def test_the_call_record_writer_ends_when_its_cancel_is_eaten():
    async def scenario():
        client = EatingClient()
        core = _core("t-eaten-log")
        log = CallLog(core, core.node_name)
        log.ended(b"eaten-1", None)  # something to write, so the flush sends a command
        await _cancel_in_a_command(asyncio.get_running_loop().create_task(log.run(lambda: client)), client)

    run(scenario())


def test_the_dns_refresher_ends_when_its_cancel_lands_as_a_wake_up_completes():
    """asyncio.wait_for on Python 3.11 returns the result, not the cancel, when the awaited thing has
    just finished: a cancel landing a few loop turns after `wake` was set was eaten, and the refresher
    went on. Every landing point in the first turns after a wake-up is tried."""
    from proxy.dnsnames import DestinationNames

    async def trial(turns):
        loop = asyncio.get_running_loop()
        names = DestinationNames(loop)
        stopped = asyncio.Event()
        task = loop.create_task(names.run(stopped))
        for _ in range(3):
            await asyncio.sleep(0)
        names.wake.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            async with asyncio.timeout(1):
                await asyncio.gather(task, return_exceptions=True)
        except TimeoutError:
            stopped.set()  # let it go, then say which landing point was eaten
            names.wake.set()
            await asyncio.gather(task, return_exceptions=True)
            return turns
        return None

    async def scenario():
        return [t for t in [await trial(turns) for turns in range(8)] if t is not None]

    assert run(scenario()) == [], "cancels eaten at these loop turns after the wake-up"
