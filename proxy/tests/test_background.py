"""A task the proxy starts and does not await is held until it is done, then let go."""

import asyncio
import gc

from proxy.background import Background


def test_a_task_nobody_else_holds_runs_to_its_end():
    async def scenario():
        tasks = Background()
        gate = asyncio.Event()
        finished = []

        async def work():
            await gate.wait()
            finished.append(True)

        tasks.start(work())  # the result thrown away, as the proxy does
        gc.collect()
        assert len(tasks) == 1
        gate.set()
        for _ in range(3):
            await asyncio.sleep(0)
        assert finished == [True] and len(tasks) == 0

    asyncio.run(scenario())
