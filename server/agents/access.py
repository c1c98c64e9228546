"""Who may use an agent: its owner always, anyone while it is public. The one place this rule is
written; the agents, chats, retrieval and task domains all ask here, so that making an agent
private takes effect everywhere at once (every reply and every read checks it again). The other
domains read the agents table only through these functions, in their own sessions, and get
views (views.py), never rows."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from server.agents.models import Agent

# The agents table as other domains may read it: the queries live in the repository, the
# repository stays this domain's own.
from server.agents.repository import agent_ids_owned_by, get_agent, owned_count, public_among
from server.agents.views import AgentView

__all__ = ["agent_ids_owned_by", "may_use", "owned_count", "public_among", "usable", "usable_agent"]


def may_use(agent: Agent | AgentView | None, user_id: int | None) -> bool:
    """Whether the user `user_id` (None: no user account) may read and talk to `agent` (a row
    inside this domain and chats' transactions, a view everywhere else)."""
    return agent is not None and (agent.is_public or (user_id is not None and agent.owner_id == user_id))


def usable(agent: AgentView | None, user_id: int | None) -> AgentView | None:
    """`agent` if the user `user_id` may use it; None otherwise."""
    return agent if may_use(agent, user_id) else None


async def usable_agent(session: AsyncSession, agent_id: int, user_id: int | None) -> AgentView | None:
    """The agent, if `user_id` may use it now; None when it does not exist or is not theirs to use."""
    agent = await get_agent(session, agent_id)
    return usable(AgentView.of(agent) if agent is not None else None, user_id)
