"""Tasks the proxy starts and does not await: a TCP connect, a DNS lookup, a Redis write.

The event loop holds only a weak reference to a task, so a task nobody else holds may be
garbage-collected before it finishes (see `asyncio.create_task`). Each owner keeps the
ones it started in a `Background` until they are done.
"""

import asyncio


class Background:
    def __init__(self, loop=None):
        self.loop = loop  # None: the loop running when a task starts
        self.tasks = set()

    def start(self, coro):
        loop = self.loop or asyncio.get_running_loop()
        task = loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def __len__(self):
        return len(self.tasks)


async def sleep_unless_stopped(stopped, seconds):
    """Wait `seconds`, or less if the asyncio.Event `stopped` is set meanwhile (or already)."""
    if stopped.is_set():
        return
    try:
        await asyncio.wait_for(stopped.wait(), seconds)
    except TimeoutError:
        pass


def raise_if_cancelled():
    """End a task whose cancellation was eaten on the way.

    redis-py can swallow a cancel that lands inside a command: the command returns or fails as if
    nothing happened, and a `while not stopped` loop goes round again, for ever (seen in a Redis
    writer cancelled without being stopped: its task stayed "cancelling" and CI hung). Loops that
    talk to Redis call this on every turn; on Python 3.11 the pending cancel shows in
    `Task.cancelling()` until it is raised."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
