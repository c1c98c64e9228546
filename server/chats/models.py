"""The chats and messages tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.agents.models import Agent
from server.identity.models import Id
from server.storage.models import Base, UtcDateTime, utcnow


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_owner_activity", "owner_id", "last_message_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    # A deleted agent leaves its conversations in place, without an agent.
    agent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    agent: Mapped[Agent | None] = relationship(lazy="joined")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_chat_id_id", "chat_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(Id, ForeignKey("chats.id", ondelete="CASCADE"))
    # "user" or "assistant".
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    # "complete", "incomplete" or "error".
    status: Mapped[str] = mapped_column(String(16), default="complete")
    llm_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # The passages an assistant reply was given (relais.v1.Passage as JSON), best first.
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # The tools an assistant reply called, in order: [{"call": ToolCall, "result": ToolResult}]
    # as the protos' JSON.
    tool_steps: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
