"""A consistent, read-only view of the database while the service keeps writing.

PostgreSQL: one REPEATABLE READ READ ONLY transaction (every query sees the same snapshot).
SQLite: `VACUUM INTO` a private copy (one read transaction copies the whole file), read
through its own engine and removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from server.backup.tables import Row, encode_row
from server.storage import Database

# Rows read per query; each page starts after the last key of the previous one.
PAGE = 2000


@contextlib.asynccontextmanager
async def snapshot(database: Database, workdir: Path) -> AsyncIterator[AsyncConnection]:
    if database.dialect == "postgresql":
        async with database.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with connection.begin():
                yield connection
        return
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    copy = workdir / f"snapshot-{uuid.uuid4().hex}.db"
    try:
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            literal = str(copy).replace("'", "''")
            await autocommit.exec_driver_sql(f"VACUUM INTO '{literal}'")
        engine = create_async_engine(f"sqlite+aiosqlite:///{copy}")
        try:
            async with engine.connect() as connection, connection.begin():
                yield connection
        finally:
            await engine.dispose()
    finally:
        for leftover in (copy, copy.with_name(copy.name + "-journal")):
            leftover.unlink(missing_ok=True)


async def revision(connection: AsyncConnection) -> str:
    return str(await connection.scalar(text("SELECT version_num FROM alembic_version")))


async def table_rows(connection: AsyncConnection, table: Table) -> AsyncIterator[Row]:
    """Every row of `table`, in primary-key order, as portable values, a page at a time."""
    key = list(table.primary_key.columns)
    last: tuple[Any, ...] | None = None
    while True:
        query = select(table).order_by(*key).limit(PAGE)
        if last is not None:
            query = query.where(tuple_(*key) > tuple_(*last))
        rows = (await connection.execute(query)).mappings().all()
        for row in rows:
            yield encode_row(table, row)
        if len(rows) < PAGE:
            return
        last = tuple(rows[-1][column.name] for column in key)
