"""Usage counts added up in memory and written once a second: a request never waits for its
count to be written, and a busy second costs one upsert per user, route and model, not one per
request. Reading a user's usage writes what this server holds first; counts held by other
replicas reach the database within a second. Stopping the server writes what is left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from server.openai_api.repository import UsageRepository, Use, today

log = logging.getLogger("relais.openai.usage")

FLUSH_EVERY = 1.0
Key = tuple[int, str, str, str]


class UsageCounter:
    def __init__(self, repository: UsageRepository, *, interval: float = FLUSH_EVERY) -> None:
        self._repository = repository
        self._interval = interval
        self._pending: dict[Key, Use] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def add(self, use: Use) -> None:
        """Count a request's use; written within `interval` seconds."""
        key = (use.user_id, use.day or today(), use.endpoint, use.model)
        held = self._pending.get(key)
        self._pending[key] = replace(use, day=key[1]) if held is None else _sum(held, use)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        self._flushing = asyncio.create_task(self.flush(), name="usage-flush")

    async def flush(self) -> None:
        """Write what is held. A failed write keeps the counts for the next one (and is logged)."""
        async with self._lock:
            uses, self._pending = list(self._pending.values()), {}
            if not uses:
                return
            try:
                await self._repository.add(uses)
            except Exception as error:
                log.error("usage counts not written yet (kept for the next attempt): %s", error)
                for use in uses:
                    key = (use.user_id, use.day, use.endpoint, use.model)
                    held = self._pending.get(key)
                    self._pending[key] = use if held is None else _sum(held, use)
                if self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(self._interval, self._flush_later)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        await self.flush()


def _sum(held: Use, use: Use) -> Use:
    return replace(
        held,
        requests=held.requests + use.requests,
        prompt_tokens=held.prompt_tokens + use.prompt_tokens,
        completion_tokens=held.completion_tokens + use.completion_tokens,
    )
