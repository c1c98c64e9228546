"""What the vector store and the disk still hold under source keys that no row names.

The SQL rows decide what exists (see server/retrieval/core.py); the passage store and the
stored files follow them and can fall behind: a process can die between writing passages
and committing the row that names them, and the store can be down when a row is deleted.
So every key that could be left behind enters the retrieval_cleanup ledger, in SQL, before
that can happen:

- an ingestion enters its key as "ingesting" before it writes anything, touches the entry
  after every batch, and removes it in the transaction that commits the row naming the key;
- a deletion enters the keys as "orphaned" in the transaction that drops the rows.

`sweep()` removes the stored bytes and the passages of every orphaned key, and of every
ingesting key left untouched for longer than the grace period (its process died), and then
the entry. It runs right after each deletion and periodically (the scheduler's
"retrieval-cleanup" task), so what failed, with the store down, is done once it is back.

A stale ingesting key is claimed (turned "orphaned", committed) before anything of it is
removed, and an ingestion only touches or settles a key that is still "ingesting": so an
ingestion that was merely stalled past the grace period fails (503, send it again) instead
of committing a row whose passages the sweep removed, whichever of the two goes first.

    await cleanup.ingesting(key)                    # before writing passages or bytes (or ingesting_many)
    await cleanup.settled(session, key)             # in the transaction that commits the row
    await cleanup.orphaned(session, [key, ...])     # in the transaction that deletes rows
    await cleanup.sweep([key, ...])                 # after that transaction
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import Unavailable
from server.retrieval import repository
from server.retrieval.store import PassageFilter, PassageStore
from server.storage import Database
from server.storage.models import utcnow

log = logging.getLogger("relais.retrieval")

# Keys per SQL IN list and per store deletion.
BATCH = 256


def batches(keys: Sequence[str]) -> Iterable[list[str]]:
    for offset in range(0, len(keys), BATCH):
        yield list(keys[offset : offset + BATCH])


class Cleanup:
    def __init__(
        self,
        database: Database,
        store: PassageStore,
        stored_path: Callable[[str], Path],
        *,
        ingest_grace_seconds: float = 600.0,
    ) -> None:
        self._database = database
        self._store = store
        self._stored_path = stored_path
        self._grace = timedelta(seconds=ingest_grace_seconds)

    @property
    def grace_seconds(self) -> float:
        return self._grace.total_seconds()

    async def ingesting(self, key: str) -> None:
        async with self._database.sessions() as session, session.begin():
            repository.enter_ingesting(session, [key])

    async def ingesting_many(self, keys: Sequence[str]) -> None:
        """`ingesting` for many keys, one transaction per batch (a restore brings thousands)."""
        for part in batches(keys):
            async with self._database.sessions() as session, session.begin():
                repository.enter_ingesting(session, part)

    async def touch_many(self, keys: Sequence[str]) -> None:
        """`touch` for many keys; fails if a sweep has claimed any of them."""
        for part in batches(sorted(set(keys))):
            async with self._database.sessions() as session, session.begin():
                touched = await repository.touch_ingesting(session, part)
            if touched != len(part):
                raise self._claimed()

    async def touch(self, key: str) -> None:
        """Say the ingestion of `key` is alive; fails once a sweep has claimed it."""
        async with self._database.sessions() as session, session.begin():
            touched = await repository.touch_ingesting(session, [key])
        if touched != 1:
            raise self._claimed()

    async def settled(self, session: AsyncSession, key: str) -> None:
        """In the transaction that commits the row naming `key`; fails (and so rolls it back)
        once a sweep has claimed the key."""
        if not await repository.settle(session, key):
            raise self._claimed()

    def _claimed(self) -> Unavailable:
        seconds = int(self._grace.total_seconds())
        return Unavailable(f"The ingestion stalled for more than {seconds} s and was discarded; send it again")

    @staticmethod
    async def orphaned(session: AsyncSession, keys: Iterable[str]) -> None:
        for part in batches(sorted(set(keys))):
            await repository.enter_orphaned(session, part)

    async def abandon(self, key: str) -> None:
        """An ingestion that failed: whatever it wrote goes now (or at the next sweep)."""
        async with self._database.sessions() as session, session.begin():
            await self.orphaned(session, [key])
        await self.sweep([key])

    async def sweep(self, keys: Sequence[str] | None = None) -> int:
        """Remove what is due (among `keys` if given): bytes, passages, then the entries.
        Returns how many keys were cleared; with the store down, it stops (logged; the next
        sweep retries)."""
        cleared = 0
        for part in [None] if keys is None else batches(list(keys)):
            while True:
                due = await self._due(part)
                if not due:
                    break
                for key in due:
                    await asyncio.to_thread(_remove_stored, self._stored_path(key))
                try:
                    await self._store.delete(PassageFilter(sources=tuple(due)))
                except Exception as error:  # Unavailable mostly; whatever it is, the next sweep retries.
                    log.warning("%d passage sources wait for the vector store to be cleaned up: %s", len(due), error)
                    return cleared
                async with self._database.sessions() as session, session.begin():
                    await repository.forget_entries(session, due)
                cleared += len(due)
                if part is not None or len(due) < BATCH:
                    break
        return cleared

    async def _due(self, keys: list[str] | None) -> list[str]:
        """Up to BATCH keys whose leftovers may go now (among `keys` if given), claimed: a stale
        ingesting key is turned orphaned first, so that its ingestion can no longer settle it."""
        async with self._database.sessions() as session, session.begin():
            due = await repository.claim_due(session, keys, stale_before=utcnow() - self._grace, limit=BATCH)
            if not due:
                return []
            # A key that a row names is not garbage, whatever the ledger says: only its entry goes.
            named = await repository.named_keys(session, due)
            if named:
                log.warning("retrieval_cleanup listed %d keys that rows still name; dropping those entries", len(named))
                await repository.forget_entries(session, list(named))
        return sorted(key for key in due if key not in named)


def _remove_stored(path: Path) -> None:
    """A document's bytes, and the partial copy a crash during its writing may have left."""
    for candidate in (path, path.with_name(path.name + ".part")):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
