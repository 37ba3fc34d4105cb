"""Background work in slices, so a datagram never waits behind a batch.

The writers that run beside the message path (call records, dialog records) turn what piled up
since their last run into Redis commands. Normally that is 100 ms of calls and under a
millisecond of work. But when the proxy is short of CPU (a busy neighbour, a slow Redis) the pile
grows, and encoding it in one go held the loop for 50-70 ms at 1,000 calls/s under two CPU
burners: every datagram that arrived meanwhile waited, and the wait made the next pile bigger.
`Slicer` hands the loop back every SLICE_S of work, so the message path runs in between.
"""

import asyncio
import time

SLICE_S = 0.002  # at most this much background work before the loop reads its sockets again
CHECK_EVERY = 32  # items between two clock reads


class Slicer:
    __slots__ = ("deadline", "count")

    def __init__(self):
        self.deadline = time.perf_counter() + SLICE_S
        self.count = 0

    async def tick(self):
        """Call once per item; yields to the loop when this slice is spent."""
        self.count += 1
        if self.count % CHECK_EVERY:
            return
        now = time.perf_counter()
        if now >= self.deadline:
            await asyncio.sleep(0)
            self.deadline = time.perf_counter() + SLICE_S
