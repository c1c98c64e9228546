"""The idempotency_keys table: one row per (caller, RPC, key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime, utcnow

RUNNING = "running"  # the first request is being served (until locked_until)
DONE = "done"  # its answer is stored: a retry gets it again
SAVED = "saved"  # it saved something, but its answer was lost with the database connection


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "method", "key", name="uq_idempotency_keys_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The caller (Principal.subject): keys are private to it.
    owner: Mapped[str] = mapped_column(String(128))
    # The RPC, "/relais.v1.ChatService/CreateChat".
    method: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of the request message: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    # Who serves the request now: a retry that takes over an abandoned claim changes it.
    token: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime] = mapped_column(UtcDateTime)
    # Written in the same transaction as the request's own writes: true once one is committed.
    saved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The rows the request created ("chats:42"), named in the refusal of a SAVED key's retry.
    created_rows: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # The answer: a gRPC status name ("OK", "UNAVAILABLE"...), the error's reason and message, or
    # the serialised response.
    status_code: Mapped[str] = mapped_column(String(32), default="", server_default="")
    reason: Mapped[str] = mapped_column(String(64), default="", server_default="")
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
