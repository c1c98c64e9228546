"""The EventBus contract: publish typed events, subscribe to topics (optionally one key's).

    bus = LocalBus()                      # or RedisBus(url) across replicas; await bus.start()
    async with bus.subscribe([Selector(CHAT_MESSAGE, key=7)]) as events:
        async for envelope in events:     # Envelope(topic, event, ts, origin)
            ...
    await bus.publish(CHAT_MESSAGE, MessageStored(chat_id=7, owner_id=1, message={...}))

Delivery is at most once and in publication order per publisher. A subscriber that falls
`capacity` events behind is cut off (its iteration raises Overflow) rather than slowing the
publisher or growing without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from server.events.topics import Topic

DEFAULT_CAPACITY = 1000


class Overflow(Exception):
    """The subscriber read too slowly and missed events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    topic: Topic[Any]
    event: Any
    # When the event was published (epoch seconds), on the publishing node's clock.
    ts: float
    # The node that published it.
    origin: str


@dataclass(frozen=True, slots=True)
class Selector:
    """One topic's events, or only those whose key is `key`."""

    topic: Topic[Any]
    key: int | str | None = None


_CLOSED = object()


class Subscription:
    """An async iterator of envelopes; detaches from the bus when closed (or on `async with` exit)."""

    __slots__ = ("_detach", "_overflowed", "_queue", "capacity", "selectors")

    def __init__(self, selectors: tuple[Selector, ...], detach: Callable[[Subscription], None], capacity: int) -> None:
        self.selectors = selectors
        self.capacity = capacity
        self._detach = detach
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._overflowed = False

    def deliver(self, envelope: Envelope) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= self.capacity:
            self._overflowed = True
            self._queue.put_nowait(_CLOSED)
            self._detach(self)
            return
        self._queue.put_nowait(envelope)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        item = await self._queue.get()
        if item is _CLOSED:
            if self._overflowed:
                raise Overflow(f"more than {self.capacity} events unread")
            raise StopAsyncIteration
        envelope: Envelope = item
        return envelope

    def close(self) -> None:
        """Detach; a reader waiting on the subscription stops iterating."""
        self._detach(self)
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._detach(self)


class EventBus(Protocol):
    node: str

    async def start(self) -> None:
        """Start listening (across replicas); a no-op in-process."""

    async def publish(self, topic: Topic[Any], event: Any) -> None:
        """Deliver `event` to every subscriber of `topic`, on every replica. Never raises for a
        transport failure: live notifications are best effort, the stored state is the truth."""

    def subscribe(self, selectors: Iterable[Selector], *, capacity: int = DEFAULT_CAPACITY) -> Subscription:
        """Events of `selectors` from now on, until the subscription is closed."""
        ...

    async def close(self) -> None: ...


def now() -> float:
    return time.time()
