"""Migrations run on start, on SQLite and PostgreSQL, and are idempotent; SQLite's writers queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect, select

from server.config import async_database_url
from server.errors import DomainError
from server.storage import Database, create_database
from server.storage.faults import DatabaseUnavailable
from server.storage.models import Base, SystemSetting


def test_migrations_create_the_schema_and_can_run_twice(database_url: str) -> None:
    async def scenario() -> tuple[set[str], str | None]:
        database = create_database(async_database_url(database_url))
        try:
            await database.migrate()
            await database.migrate()
            async with database.sessions() as session, session.begin():
                await session.merge(SystemSetting(key="probe", value="1"))
            async with database.sessions() as session:
                value = await session.scalar(select(SystemSetting.value).where(SystemSetting.key == "probe"))
            async with database.engine.connect() as connection:
                tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            return tables, value
        finally:
            await database.dispose()

    tables, value = asyncio.run(scenario())

    assert {"alembic_version", "system_settings"} <= tables
    assert value == "1"


def test_plain_urls_get_async_drivers() -> None:
    assert async_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert async_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


def test_the_migrations_build_the_schema_the_models_declare(database_url: str) -> None:
    """A model changed without a migration (or the reverse) shows up here, on both engines."""
    import server.app  # noqa: F401  (imports every domain, so every model is on Base.metadata)

    async def scenario() -> list[object]:
        database = create_database(async_database_url(database_url))
        try:
            await database.migrate()
            async with database.engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await database.dispose()

    assert asyncio.run(scenario()) == []


def sqlite_database(path: Path, *, busy_timeout_ms: int) -> Database:
    """A migrated-later SQLite database whose connections wait at most `busy_timeout_ms` on
    SQLite's own lock (0: a second writer fails at once instead of polling)."""
    database = create_database(async_database_url(f"sqlite:///{path}"))
    event.listen(
        database.engine.sync_engine,
        "connect",
        lambda connection, _record: connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}"),
    )
    return database


def test_concurrent_writers_of_one_process_queue_instead_of_polling_sqlite(tmp_path: Path) -> None:
    """Sixteen transactions holding the write lock across event-loop turns, as aiosqlite's do:
    with SQLite's busy handler off, any writer that met another's lock would fail at once; the
    process's writer gate queues them, so all commit."""

    async def scenario() -> list[str]:
        database = sqlite_database(tmp_path / "gate.db", busy_timeout_ms=0)
        try:
            await database.migrate()

            async def write(index: int) -> None:
                async with database.sessions() as session, session.begin():
                    session.add(SystemSetting(key=f"writer-{index:02d}", value="1"))
                    await session.flush()
                    await asyncio.sleep(0.005)  # other tasks run while this one holds the lock

            await asyncio.gather(*(write(index) for index in range(16)))
            async with database.sessions() as session:
                keys = await session.scalars(select(SystemSetting.key).where(SystemSetting.key.like("writer-%")))
                return sorted(keys)
        finally:
            await database.dispose()

    assert asyncio.run(scenario()) == [f"writer-{index:02d}" for index in range(16)]


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    async def scenario() -> str | None:
        database = sqlite_database(tmp_path / "read.db", busy_timeout_ms=0)
        try:
            await database.migrate()
            async with database.sessions() as writer, writer.begin():
                writer.add(SystemSetting(key="pending", value="1"))
                await writer.flush()
                async with database.sessions() as reader:
                    # A hang here would be a reader queued behind the writer (the timeout only bounds it).
                    async with asyncio.timeout(10):
                        return await reader.scalar(select(SystemSetting.key).where(SystemSetting.key == "pending"))
        finally:
            await database.dispose()

    assert asyncio.run(scenario()) is None  # not committed yet: invisible, and not waited for


def test_a_writer_kept_waiting_past_the_timeout_is_told_the_database_is_locked(tmp_path: Path) -> None:
    async def scenario() -> tuple[DomainError | None, str]:
        database = sqlite_database(tmp_path / "locked.db", busy_timeout_ms=0)
        assert database.writer_gate is not None
        database.writer_gate.timeout = 0.2
        try:
            await database.migrate()
            async with database.sessions() as first, first.begin():
                first.add(SystemSetting(key="first", value="1"))
                await first.flush()
                try:
                    async with database.sessions() as second, second.begin():
                        second.add(SystemSetting(key="second", value="1"))
                        await second.flush()
                except Exception as error:  # its translation is what is checked
                    return database.translate(error), str(error)
            raise AssertionError("the second writer was let in while the first held the lock")
        finally:
            await database.dispose()

    translated, message = asyncio.run(scenario())
    assert isinstance(translated, DatabaseUnavailable)  # 503, retry shortly
    assert "another transaction of this process has been writing for 0.2 s" in message
