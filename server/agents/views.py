"""An agent as the servicers and the other domains see it: plain values, read while the
database session is open, never a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.agents.models import Agent


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
        return cls(
            id=agent.id,
            owner_id=agent.owner_id,
            owner_trigramme=agent.owner.trigramme,
            name=agent.name,
            system_prompt=agent.system_prompt,
            learn_from_interaction=agent.learn_from_interaction,
            is_public=agent.is_public,
            model=agent.model,
            temperature=agent.temperature,
            avatar_url=agent.avatar_url,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
        )
