"""Conversations and messages as the servicers and the other domains see them: plain values,
read while the database session is open, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.agents.views import AgentView
from server.chats.models import Chat, Message
from server.storage.models import utcnow
from server.views import copied


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatView:
    """A conversation's fields and its agent (None once deleted). Whether its owner may still
    use that agent is asked at every read (agents.access), not decided here."""

    id: int
    owner_id: int
    agent_id: int | None
    title: str
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    agent: AgentView | None

    @classmethod
    def of(cls, chat: Chat) -> ChatView:
        # The agent and its owner come with the chat (joined relationships): no further query.
        return copied(cls, chat, agent=AgentView.of(chat.agent) if chat.agent is not None else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageView:
    """A stored message. `sources` and `tool_steps` are the protos' JSON, as stored (empty when
    the row has none)."""

    id: int
    chat_id: int
    role: str
    content: str
    status: str
    llm_model: str | None
    prompt_tokens: int
    completion_tokens: int
    sources: tuple[dict[str, Any], ...]
    tool_steps: tuple[dict[str, Any], ...]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageView:
        """The message, once flushed (its id and timestamps are known then)."""
        return copied(cls, message, sources=tuple(message.sources or ()), tool_steps=tuple(message.tool_steps or ()))

    @classmethod
    def empty_reply(cls, chat_id: int) -> MessageView:
        """An empty complete reply that was never stored (its conversation deleted meanwhile)."""
        now = utcnow()
        return cls(
            id=0,
            chat_id=chat_id,
            role="assistant",
            content="",
            status="complete",
            llm_model=None,
            prompt_tokens=0,
            completion_tokens=0,
            sources=(),
            tool_steps=(),
            created_at=now,
            updated_at=now,
        )
