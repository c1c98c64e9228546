"""An agent as the servicers and the other domains see it: plain values, read while the
database session is open, never a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.agents.models import Agent
from server.views import copied


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    """An agent's fields, and its owner's trigramme (the one thing shown of the owner)."""

    id: int
    owner_id: int
    owner_trigramme: str | None
    name: str
    system_prompt: str
    learn_from_interaction: bool
    is_public: bool
    model: str
    temperature: float
    avatar_url: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, agent: Agent) -> AgentView:
        # The owner comes with the agent (a joined relationship): no further query.
        return copied(cls, agent, owner_trigramme=agent.owner.trigramme)
