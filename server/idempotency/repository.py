"""SQLAlchemy queries of idempotency keys. Functions take an open session and never commit.

A claim's writes match the row on (id, token) in one UPDATE or DELETE: a retry that took the
abandoned claim over changed the token, so the request it took over from writes nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.idempotency.models import IdempotencyRecord


async def find_locked(session: AsyncSession, owner: str, method: str, key: str) -> IdempotencyRecord | None:
    """The key's row, locked (FOR UPDATE) until the session's transaction ends."""
    query = select(IdempotencyRecord).where(
        IdempotencyRecord.owner == owner, IdempotencyRecord.method == method, IdempotencyRecord.key == key
    )
    found: IdempotencyRecord | None = await session.scalar(query.with_for_update())
    return found


async def insert(session: AsyncSession, record: IdempotencyRecord) -> None:
    """Add `record` now (its id is set); IntegrityError when the key was claimed meanwhile."""
    session.add(record)
    await session.flush()


async def was_saved(session: AsyncSession, record_id: int) -> bool | None:
    """Whether a commit of the key's request went through (None: the row is gone)."""
    saved: bool | None = await session.scalar(select(IdempotencyRecord.saved).where(IdempotencyRecord.id == record_id))
    return saved


async def update_claimed(session: AsyncSession, record_id: int, token: str, **values: object) -> None:
    """Write `values` on the row while `token` still holds it."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.token == token)
        .values(**values)
    )


async def delete_claimed(session: AsyncSession, record_id: int, token: str) -> None:
    """Remove the row while `token` still holds it."""
    await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id, IdempotencyRecord.token == token)
    )


async def delete_expired(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now))
