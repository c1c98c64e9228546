"""Queries of the agents domain. Functions take an open session and never commit."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.agents.models import Agent


async def get_agent(session: AsyncSession, agent_id: int) -> Agent | None:
    return await session.get(Agent, agent_id)


async def lock_agent(session: AsyncSession, agent_id: int) -> Agent | None:
    """The agent, locked until the transaction ends: a change or deletion waits for another's."""
    agent: Agent | None = await session.scalar(select(Agent).where(Agent.id == agent_id).with_for_update(of=Agent))
    return agent


def public_agents() -> Select[tuple[Agent]]:
    """The public agents, newest first."""
    return select(Agent).where(Agent.is_public).order_by(Agent.created_at.desc(), Agent.id.desc())


async def agents_owned_by(session: AsyncSession, user_id: int) -> list[Agent]:
    """The user's agents, newest first."""
    return list(await session.scalars(select(Agent).where(Agent.owner_id == user_id).order_by(Agent.created_at.desc())))


async def public_among(session: AsyncSession, agent_ids: Iterable[int]) -> set[int]:
    """Those of `agent_ids` that are public now."""
    wanted = set(agent_ids)
    if not wanted:
        return set()
    return set(await session.scalars(select(Agent.id).where(Agent.id.in_(wanted), Agent.is_public)))


async def agent_ids_owned_by(session: AsyncSession, user_id: int) -> list[int]:
    """The agents the user `user_id` owns (their deletion takes what others keep of them along)."""
    return list(await session.scalars(select(Agent.id).where(Agent.owner_id == user_id)))


async def owned_count(session: AsyncSession, user_id: int) -> int:
    """How many agents the user `user_id` owns."""
    return int(await session.scalar(select(func.count()).select_from(Agent).where(Agent.owner_id == user_id)) or 0)
