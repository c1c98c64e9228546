"""Applying a plan: files and passages first, under source keys entered in the retrieval
cleanup ledger, then every row in one transaction that also settles those keys.

If anything fails (a row the database refuses, the store down, a cancellation), the
transaction rolls back and the files and passages written under the new keys are removed:
the instance is as it was. A crash in between leaves only ledger entries, which the
retrieval cleanup sweep clears (see server/retrieval/cleanup.py). While it writes, the import
keeps its entries touched, so that a restore longer than the ingestion grace period (a large
archive, vectors embedded again) is not taken for a dead one and swept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Table, and_, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.backup.archive import VerifiedArchive
from server.backup.plan import Sources, TableChanges
from server.backup.rows import passages
from server.backup.tables import decode_row
from server.errors import InvalidArgument
from server.retrieval.cleanup import Cleanup
from server.retrieval.service import KnowledgeBase, write_atomically
from server.retrieval.store import passage_from_row
from server.storage import Database

log = logging.getLogger("relais.backup")

VECTOR_BATCH = 512
INSERT_BATCH = 1000


class ImportFailed(InvalidArgument):
    """The database refused the archive's rows: nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    database: Database
    knowledge: KnowledgeBase
    # Whether archived vectors can be used as they are (same embedding model and dimension).
    same_embedding: bool


def _batches(archive: VerifiedArchive, keys: set[str]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in passages(archive):
        if row["source"] in keys:
            batch.append(row)
            if len(batch) == VECTOR_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


@contextlib.asynccontextmanager
async def _kept_alive(cleanup: Cleanup, keys: list[str]) -> AsyncIterator[None]:
    """Touch the import's ledger entries every third of the grace period while the block runs
    (files written, passages inserted, the store flushed), whichever step takes long."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(cleanup.grace_seconds / 3)
            await cleanup.touch_many(keys)  # fails once claimed: `settled` then refuses the commit

    task = asyncio.create_task(beat()) if keys else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _restore_passages(target: Target, archive: VerifiedArchive, keys: set[str]) -> int:
    restored = 0
    iterator = _batches(archive, keys)
    while batch := await asyncio.to_thread(next, iterator, None):
        stored = [passage_from_row(row) for row in batch]
        if target.same_embedding:
            vectors = np.stack([np.frombuffer(base64.b64decode(row["vector"]), dtype="<f4") for row in batch])
        else:
            vectors = await target.knowledge.embed([passage.text for passage in stored])
        await target.knowledge.store.insert(stored, vectors)
        restored += len(stored)
    if restored:
        await target.knowledge.store.flush()
    return restored


async def _write_files(target: Target, archive: VerifiedArchive, sources: Sources) -> None:
    for key in sources.documents:
        entry = f"files/documents/{key}"
        if archive.has(entry):
            data = await asyncio.to_thread(archive.read, entry)
            await asyncio.to_thread(write_atomically, target.knowledge.stored_path(key), data)


async def _write_rows(session: AsyncSession, changes: list[TableChanges]) -> None:
    for plan in changes:
        table = plan.table
        for offset in range(0, len(plan.insert), INSERT_BATCH):
            rows = [decode_row(table, row) for row in plan.insert[offset : offset + INSERT_BATCH]]
            await session.execute(table.insert(), rows)
        for row in plan.update:
            values = decode_row(table, row)
            where = and_(*(column == values[column.name] for column in table.primary_key.columns))
            await session.execute(table.update().where(where).values(values))


async def _advance_sequences(session: AsyncSession, changes: list[TableChanges]) -> None:
    """PostgreSQL: identity sequences past the ids written explicitly (SQLite needs nothing)."""
    for plan in changes:
        table: Table = plan.table
        columns = list(table.primary_key.columns)
        if not plan.insert or len(columns) != 1 or columns[0].autoincrement is False:
            continue
        name = columns[0].name
        sequence = await session.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": table.name, "column": name}
        )
        if sequence:
            await session.execute(
                text(f'SELECT setval(:sequence, GREATEST((SELECT MAX("{name}") FROM "{table.name}"), 1))'),
                {"sequence": sequence},
            )


async def apply_plan(target: Target, archive: VerifiedArchive, changes: list[TableChanges], sources: Sources) -> int:
    """Write the plan; returns the passages restored."""
    cleanup: Cleanup = target.knowledge.cleanup
    keys = sorted(sources.new)
    try:
        await cleanup.ingesting_many(keys)
        async with _kept_alive(cleanup, keys):
            await _write_files(target, archive, sources)
            restored = await _restore_passages(target, archive, sources.new)
        async with target.database.sessions() as session, session.begin():
            await _write_rows(session, changes)
            for key in keys:
                await cleanup.settled(session, key)
            await Cleanup.orphaned(session, sources.replaced)
            if target.database.dialect == "postgresql":
                await _advance_sequences(session, changes)
    except (IntegrityError, DBAPIError) as error:
        await _abandon(target, keys)
        raise ImportFailed(f"The database refused the archive's rows ({error.orig}); nothing was changed") from None
    except BaseException:
        await _abandon(target, keys)  # keys never entered have nothing to remove
        raise
    if sources.replaced:
        await cleanup.sweep(sorted(sources.replaced))
    return restored


async def _abandon(target: Target, keys: list[str]) -> None:
    """What was written under `keys` goes now (or at the next sweep); a cancellation of the
    import does not stop it."""

    async def abandon() -> None:
        async with target.database.sessions() as session, session.begin():
            await Cleanup.orphaned(session, keys)
        await target.knowledge.cleanup.sweep(keys)

    if keys:
        with contextlib.suppress(Exception):
            await asyncio.shield(abandon())
