"""The documents, memories, corpus_files and retrieval_cleanup tables.

These rows are the truth about what exists: a passage found in the vector store counts only
while the row it came from names its source key, so a file's chunks are replaced, and a
document deleted, at the moment its row changes (see server/retrieval/core.py). What the
store and the disk still hold for keys no row names is listed in retrieval_cleanup until it
is gone (see server/retrieval/cleanup.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.identity.models import Id
from server.storage.models import Base, UtcDateTime, utcnow


class Document(Base):
    """An uploaded file, kept as sent under the documents directory (RELAIS_DOCUMENTS_DIR)."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_entity", "entity_type", "entity_id"),
        Index("ix_documents_owner_id", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    # "agent", "chat" or "user" (the owner's own).
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(100))
    file_size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Names the stored bytes (<documents directory>/<key>) and, in the vector store, the passages.
    source_key: Mapped[str] = mapped_column(String(64), unique=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Memory(Base):
    """A fact a user stored, or an exchange an agent learnt from."""

    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_owner_id", "owner_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("agents.id", ondelete="CASCADE"), nullable=True)
    content: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The vector store's key for the memory's passages.
    source_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CorpusFile(Base):
    """A file of the corpus directory as last indexed."""

    __tablename__ = "corpus_files"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # Relative to the corpus directory, with forward slashes.
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    file_size: Mapped[int] = mapped_column(BigInteger)
    # The vector store's key for this version's passages; a new one at every (re)indexing.
    source_key: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class PendingCleanup(Base):
    """Passages (and a document's stored bytes) under a source key that no row names, or may
    never name: written before the store is touched or in the transaction that drops the
    naming row, deleted once the store and the disk no longer hold anything under the key."""

    __tablename__ = "retrieval_cleanup"
    __table_args__ = (Index("ix_retrieval_cleanup_state", "state", "touched_at"),)

    source_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "ingesting": passages being written, the row that will name them not committed yet;
    # "orphaned": no row names them any more.
    state: Mapped[str] = mapped_column(String(16))
    # An ingestion touches its entry after every batch; one left untouched has crashed.
    touched_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
