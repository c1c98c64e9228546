"""Ending live calls when their caller's session ends, on whichever replica it ended.

One subscription to `session.ended` per process; live calls register their principal under
its user id, and an ended session's calls are told at once (their task is cancelled, and
the interceptor turns that into UNAUTHENTICATED).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from server.auth import Principal
from server.events.bus import EventBus, Overflow, Selector
from server.events.topics import SESSION_ENDED

log = logging.getLogger("relais.events.sessions")

# The watch must never miss an end because it read slowly: a deep queue, and a restart if it overflows.
CAPACITY = 100_000


class SessionWatch:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._watchers: dict[int, dict[int, tuple[Principal, Callable[[], None]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-watch")

    async def _run(self) -> None:
        while True:
            subscription = self._bus.subscribe([Selector(SESSION_ENDED)], capacity=CAPACITY)
            try:
                async for envelope in subscription:
                    self._ended(envelope.event)
            except Overflow:
                log.warning("session watch fell behind; resubscribing")
            finally:
                subscription.close()

    def _ended(self, event: object) -> None:
        assert isinstance(event, SESSION_ENDED.event_type)
        for principal, end in list(self._watchers.get(event.user_id, {}).values()):
            if event.ends(principal):
                end()

    @contextlib.contextmanager
    def watch(self, principal: Principal, end: Callable[[], None]) -> Iterator[None]:
        """Call `end` if `principal`'s session ends while the block runs."""
        if principal.user_id is None:
            yield
            return
        watchers = self._watchers.setdefault(principal.user_id, {})
        token = id(end)
        watchers[token] = (principal, end)
        try:
            yield
        finally:
            watchers.pop(token, None)
            if not watchers:
                self._watchers.pop(principal.user_id, None)

    @property
    def watched(self) -> int:
        return sum(len(watchers) for watchers in self._watchers.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
