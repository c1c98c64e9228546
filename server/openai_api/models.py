"""The api_usage table: requests and tokens per user, day, route and model."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.identity.models import Id
from server.storage.models import Base


class ApiUsage(Base):
    """One user's use of one route with one model on one day (UTC). The key is the row's
    identity, so a backup restores it without a surrogate id to collide."""

    __tablename__ = "api_usage"

    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # YYYY-MM-DD (a string: portable through backups as it is).
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    # "chat.completions", "completions" or "embeddings".
    endpoint: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
