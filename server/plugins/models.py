"""The plugins table: every installed plugin, its verified bundle and what an administrator
decided (enabled, stopped). Every replica converges on it (see service.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.models import Base, UtcDateTime, utcnow


class PluginRow(Base):
    __tablename__ = "plugins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    # manifest.json as installed (the bundle's own bytes, for display and checks).
    manifest: Mapped[str] = mapped_column(Text)
    # The verified bundle, so that every replica can install it; loaded only when needed.
    bundle: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(2048))
    signed_by: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    # Grows at each enable, start, reload and update: a replica running another generation
    # (re)starts the plugin.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    installed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    last_reload_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
