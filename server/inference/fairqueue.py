"""A fixed number of slots shared fairly between callers.

Waiting requests are grouped by caller and served round-robin between callers,
first come first served within a caller: one caller sending fifty requests does
not make the next caller wait for all fifty. The queue is bounded; past the bound a
request is refused at once rather than left waiting without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from server.errors import ResourceExhausted
from server.observability import LLM_QUEUE_DEPTH, LLM_QUEUE_WAIT

# How often a waiting request is told its place, at most.
POSITION_EVERY = 1.0


class QueueFull(ResourceExhausted):
    reason = "INFERENCE_QUEUE_FULL"


class FairSlots:
    def __init__(self, slots: int, *, max_waiting: int, model: str = "local") -> None:
        self._free = list(range(slots))
        # /metrics: how many wait (relais_llm_queue_depth) and how long each waited.
        self._depth = LLM_QUEUE_DEPTH.labels(model)
        self._wait = LLM_QUEUE_WAIT.labels(model)
        self._depth.set(0)
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

    async def acquire(self, caller: str, on_position: Callable[[int], None] | None = None) -> int:
        """Wait for a slot and return its index; give it back with `release`. `on_position` is told
        the request's place in the round (1: next) when it starts waiting and when it changes."""
        if self._free and not self._waiting:
            self._wait.observe(0)
            return self._free.pop()
        if self.waiting >= self._max_waiting:
            raise QueueFull(f"The local model is busy: {self.waiting} requests are already waiting; retry later")
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(caller, deque()).append(waiter)
        self._depth.set(self.waiting)
        started = time.perf_counter()
        try:
            told = 0
            while on_position is not None and not waiter.done():
                if (position := self.position(caller, waiter)) != told:
                    on_position(position)
                    told = position
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), POSITION_EVERY)
            index = await waiter
            self._wait.observe(time.perf_counter() - started)
            return index
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted and cancelled in the same tick: hand the slot on.
                self.release(waiter.result())
            else:
                self._forget(caller, waiter)
            raise

    def position(self, caller: str, waiter: asyncio.Future[int]) -> int:
        """The waiter's place in the round-robin: each round serves one waiter of each caller in turn."""
        queues = list(self._waiting.items())
        turn = next(index for index, (name, _) in enumerate(queues) if name == caller)
        depth = self._waiting[caller].index(waiter)
        earlier_rounds = sum(min(len(queue), depth) for _, queue in queues)
        this_round = sum(1 for _, queue in queues[:turn] if len(queue) > depth)
        return earlier_rounds + this_round + 1

    def _forget(self, caller: str, waiter: asyncio.Future[int]) -> None:
        queue = self._waiting.get(caller)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._waiting[caller]
        self._depth.set(self.waiting)

    def release(self, index: int) -> None:
        while self._waiting:
            caller, queue = next(iter(self._waiting.items()))
            waiter = queue.popleft()
            # The caller just served goes to the back of the round.
            del self._waiting[caller]
            if queue:
                self._waiting[caller] = queue
            self._depth.set(self.waiting)
            if not waiter.done():
                waiter.set_result(index)
                return
        self._free.append(index)
