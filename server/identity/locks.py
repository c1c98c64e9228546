"""What other domains may ask of an account inside their own transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.identity.models import User


async def lock_account(session: AsyncSession, user_id: int) -> None:
    """Hold the account's row until the transaction ends (PostgreSQL; SQLite writes one at a time):
    a per-user quota another domain counts (agents) then stays exact under concurrent creations."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
