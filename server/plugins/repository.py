"""SQLAlchemy queries of the plugins domain. Returns ORM rows; never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from server.plugins.models import PluginRow


async def list_plugins(session: AsyncSession) -> Sequence[PluginRow]:
    """Every installed plugin, without its bundle, in id order."""
    return (await session.scalars(select(PluginRow).order_by(PluginRow.id))).all()


async def get_plugin(session: AsyncSession, plugin_id: str, *, with_bundle: bool = False) -> PluginRow | None:
    statement = select(PluginRow).where(PluginRow.id == plugin_id)
    if with_bundle:
        statement = statement.options(undefer(PluginRow.bundle))
    return (await session.scalars(statement)).first()


async def get_bundle(session: AsyncSession, plugin_id: str, sha256: str) -> bytes | None:
    """The stored bundle of `plugin_id` if it is still the one with `sha256`."""
    statement = select(PluginRow.bundle).where(PluginRow.id == plugin_id, PluginRow.sha256 == sha256)
    data: bytes | None = await session.scalar(statement)
    return data


async def next_generation(session: AsyncSession, plugin_id: str) -> None:
    await session.execute(
        update(PluginRow).where(PluginRow.id == plugin_id).values(generation=PluginRow.generation + 1)
    )


async def delete_plugin(session: AsyncSession, plugin_id: str) -> None:
    await session.execute(delete(PluginRow).where(PluginRow.id == plugin_id))
