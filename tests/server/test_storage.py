"""Migrations run on start, on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, select

from server.config import async_database_url
from server.storage import create_database
from server.storage.models import SystemSetting


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
