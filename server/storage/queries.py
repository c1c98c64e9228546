"""What every domain's repository shares: a listing read as one `Page` from the statement the
repository builds and the service refines (filters, order), and the system settings table (the
signing key, the deployment's id, what was installed once)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.paging import Page
from server.storage.models import SystemSetting

Row = TypeVar("Row")


async def count_rows(session: AsyncSession, statement: Select[Any]) -> int:
    """How many rows `statement` selects (its order dropped: counting does not need it)."""
    total = await session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    return int(total or 0)


async def page_of(session: AsyncSession, statement: Select[tuple[Row]], *, skip: int, limit: int) -> Page[Row]:
    """The rows of `statement` from position `skip`, at most `limit`, and how many it selects in all."""
    total = await count_rows(session, statement)
    rows = list(await session.scalars(statement.offset(skip).limit(limit)))
    return Page(items=rows, total=total, skip=skip, limit=limit)


async def system_setting(session: AsyncSession, key: str) -> str | None:
    value = await session.scalar(select(SystemSetting.value).where(SystemSetting.key == key))
    return str(value) if value is not None else None


def add_system_setting(session: AsyncSession, key: str, value: str) -> None:
    """Stored at the transaction's commit, which raises IntegrityError when another process stored
    `key` first (each caller then reads theirs)."""
    session.add(SystemSetting(key=key, value=value))
