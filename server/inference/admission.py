"""Admission of generations: at most RELAIS_MAX_STREAMS at once, then an explicit queue.

A generation that finds every place taken either waits in a bounded queue, told its place as it
changes (the stream's `status` events with state QUEUED and `queue_position`), or, when the
queue is full or the caller cannot be told (a unary call, a chat reply), is refused at once with
RESOURCE_EXHAUSTED (HTTP 429) and Retry-After. Nothing waits silently.

    place = await admission.enter(wait=True, on_position=print)   # 3, 2, 1... then admitted
    ...
    place.release()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from server.errors import ResourceExhausted

OnPosition = Callable[[int], None]


class TooManyStreams(ResourceExhausted):
    reason = "TOO_MANY_STREAMS"
    retry_after = 1


class Place:
    """An admitted generation's place; `release` (idempotent) gives it to the next in the queue."""

    __slots__ = ("_admission", "_released")

    def __init__(self, admission: Admission | None) -> None:
        self._admission = admission
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            if self._admission is not None:
                self._admission.leave()


class Admission:
    def __init__(self, limit: int, queue: int) -> None:
        self.limit = limit
        self.queue = queue
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        # Resolved (and replaced) whenever the queue moves, so that waiters say their new place.
        self._moved: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def enter(self, *, wait: bool, on_position: OnPosition | None = None) -> Place:
        """A place now, or after waiting in the queue (when `wait`); TooManyStreams otherwise."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return Place(self)
        if not wait or on_position is None or len(self._waiting) >= self.queue:
            raise TooManyStreams(
                f"The server is generating {self.active} streams, its most at once, and {len(self._waiting)} "
                "wait; retry shortly"
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await self._wait(turn, on_position)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.leave()  # admitted as it was cancelled: the place goes on
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove(turn)
                self._move()
            raise
        return Place(self)

    async def _wait(self, turn: asyncio.Future[None], on_position: OnPosition) -> None:
        told = 0
        while not turn.done():
            position = self._waiting.index(turn) + 1
            if position != told:
                on_position(position)
                told = position
            if self._moved is None or self._moved.done():
                self._moved = asyncio.get_running_loop().create_future()
            await asyncio.wait({turn, self._moved}, return_when=asyncio.FIRST_COMPLETED)
        turn.result()

    def _move(self) -> None:
        if self._moved is not None and not self._moved.done():
            self._moved.set_result(None)

    def leave(self) -> None:
        """A generation ended: its place goes to the first waiting, if any."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                self._move()
                return
        self.active -= 1
