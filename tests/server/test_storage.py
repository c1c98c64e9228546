"""Migrations run on start, on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from server.config import async_database_url
from server.storage import create_database
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
