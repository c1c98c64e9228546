"""Who may use an agent: its owner always, anyone while it is public. The one place this rule is
written; the agents, chats, retrieval and task domains all ask here, so that making an agent
private takes effect everywhere at once (every reply and every read checks it again). The other
domains read the agents table only through these functions, in their own sessions."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.agents.models import Agent


def may_use(agent: Agent | None, user_id: int | None) -> bool:
    """Whether the user `user_id` (None: no user account) may read and talk to `agent`."""
    return agent is not None and (agent.is_public or (user_id is not None and agent.owner_id == user_id))


def usable(agent: Agent | None, user_id: int | None) -> Agent | None:
    """`agent` if the user `user_id` may use it; None otherwise."""
    return agent if may_use(agent, user_id) else None


async def usable_agent(session: AsyncSession, agent_id: int, user_id: int | None) -> Agent | None:
    """The agent, if `user_id` may use it now; None when it does not exist or is not theirs to use."""
    return usable(await session.get(Agent, agent_id), user_id)


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
