"""A short-lived cache of authenticated principals, emptied by any change to identity data.

Checking a bearer token costs a signature check and four queries (session, user, roles,
permissions): about 8 ms of an authenticated call's latency here, more than a streamed
generation's whole relay overhead. A token seen in the last few seconds is answered
from memory instead.

Correctness does not rest on the TTL. Any commit that adds, deletes or changes identity
rows (a logout, a terminated or rotated session, a role or permission change, a
deactivated user, a revoked API key) empties every cache in the process, and, when
Redis is configured, in every other process through a pub/sub message: a revoked token
is refused on its next call everywhere. Only activity timestamps (last_activity,
last_used_at) are ignored, since they change on every few calls and alter no decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from redis import asyncio as aioredis
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from server.auth import Principal
from server.identity.models import ApiKey, AuthSession, Permission, Role, User

log = logging.getLogger("relais.identity.cache")

IDENTITY_MODELS = (User, Role, Permission, AuthSession, ApiKey)
# Columns that change as a side effect of authenticating, and decide nothing.
ACTIVITY_COLUMNS = frozenset({"last_activity", "last_used_at"})
CHANNEL = "relais:identity:changed"


@dataclass(frozen=True, slots=True)
class CachedPrincipal:
    principal: Principal
    # Hash of the session's CSRF token, for cookie-authenticated unsafe calls.
    csrf_hash: str | None
    # When the token itself expires (epoch seconds), whatever the cache's TTL.
    token_expires_at: float
    cached_at: float


class PrincipalCache:
    def __init__(self, *, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, CachedPrincipal] = OrderedDict()
        _CACHES.add(self)

    @staticmethod
    def key(kind: str, secret: str) -> str:
        # Keyed by a digest, so the cache holds no usable credential.
        return kind + ":" + hashlib.sha256(secret.encode()).hexdigest()

    def get(self, key: str) -> CachedPrincipal | None:
        if not _TRUSTED.is_set():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        moment = time.time()
        if moment - entry.cached_at > self.ttl or moment >= entry.token_expires_at:
            self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: str, entry: CachedPrincipal) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


_CACHES: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()
# Cleared while a configured Redis bus is not listening: other processes' changes could then go
# unheard, so the caches are bypassed (every call is checked against the database).
_TRUSTED = threading.Event()
_TRUSTED.set()
_PUBLISHERS: weakref.WeakSet[IdentityChangeBus] = weakref.WeakSet()


def _clear_local() -> None:
    for cache in list(_CACHES):
        cache.clear()


def _changes_identity(session: Session) -> bool:
    for instance in (*session.new, *session.deleted):
        if isinstance(instance, IDENTITY_MODELS):
            return True
    for instance in session.dirty:
        if isinstance(instance, IDENTITY_MODELS):
            state: Any = inspect(instance)
            changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
            if changed - ACTIVITY_COLUMNS:
                return True
    return False


@event.listens_for(Session, "before_flush")
def _note_identity_change(session: Session, flush_context: Any, instances: Any) -> None:
    if _changes_identity(session):
        session.info["relais.identity_changed"] = True


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    if session.info.pop("relais.identity_changed", False):
        _clear_local()
        for bus in list(_PUBLISHERS):
            bus.announce()


@event.listens_for(Session, "after_rollback")
def _on_rollback(session: Session) -> None:
    session.info.pop("relais.identity_changed", None)


def identity_changed() -> None:
    """For changes made outside the ORM's unit of work (bulk statements)."""
    _clear_local()
    for bus in list(_PUBLISHERS):
        bus.announce()


class IdentityChangeBus:
    """Tells the other processes sharing the Redis to empty their caches, and listens for them."""

    def __init__(self, url: str) -> None:
        self._redis: Any = aioredis.from_url(url)
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _TRUSTED.clear()
        _PUBLISHERS.add(self)
        self._listener = asyncio.create_task(self._listen(), name="identity-change-bus")

    async def _listen(self) -> None:
        """Subscribe, and stay subscribed: reconnect with backoff while Redis is away."""
        delay = 0.5
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                _clear_local()  # changes may have been missed while disconnected
                _TRUSTED.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        _clear_local()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("identity change bus disconnected from Redis; caches bypassed until it is back")
            finally:
                _TRUSTED.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def announce(self) -> None:
        if self._loop is None or self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            return
        task = self._loop.create_task(self._publish())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self) -> None:
        try:
            await self._redis.publish(CHANNEL, b"1")
        except Exception:
            # The other processes' caches then expire within their TTL.
            log.warning("could not announce an identity change through Redis", exc_info=True)

    async def close(self) -> None:
        _PUBLISHERS.discard(self)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if not _PUBLISHERS:
            _TRUSTED.set()
        await self._redis.aclose()
