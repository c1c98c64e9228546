"""A fixed number of slots shared fairly between callers.

Waiting requests are grouped by caller and served round-robin between callers,
first come first served within a caller: one caller sending fifty requests does
not make the next caller wait for all fifty. The queue is bounded; past the bound a
request is refused at once rather than left waiting without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque

from server.errors import ResourceExhausted


class QueueFull(ResourceExhausted):
    reason = "INFERENCE_QUEUE_FULL"


class FairSlots:
    def __init__(self, slots: int, *, max_waiting: int) -> None:
        self._free = list(range(slots))
        self._max_waiting = max_waiting
        # caller → their waiters, in arrival order; the OrderedDict's order is the round-robin turn.
        self._waiting: OrderedDict[str, deque[asyncio.Future[int]]] = OrderedDict()
        self._size = slots

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    @property
    def busy(self) -> int:
        return self._size - len(self._free)

    async def acquire(self, caller: str) -> int:
        """Wait for a slot and return its index; give it back with `release`."""
        if self._free and not self._waiting:
            return self._free.pop()
        if self.waiting >= self._max_waiting:
            raise QueueFull(f"The local model is busy: {self.waiting} requests are already waiting; retry later")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(caller, deque()).append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same tick: hand the slot on.
                self.release(waiter.result())
            else:
                self._forget(caller, waiter)
            raise

    def _forget(self, caller: str, waiter: asyncio.Future[int]) -> None:
        queue = self._waiting.get(caller)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._waiting[caller]

    def release(self, index: int) -> None:
        while self._waiting:
            caller, queue = next(iter(self._waiting.items()))
            waiter = queue.popleft()
            # The caller just served goes to the back of the round.
            del self._waiting[caller]
            if queue:
                self._waiting[caller] = queue
            if not waiter.done():
                waiter.set_result(index)
                return
        self._free.append(index)
