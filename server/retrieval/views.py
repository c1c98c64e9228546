"""Documents and memories as the servicers and the other domains see them: plain values, read
while the database session is open, never rows. Their source keys (the passage store's) stay
inside the domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.retrieval.models import Document, Memory
from server.views import copied


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentView:
    """An uploaded document: what it is, what it belongs to, how many passages it gave."""

    id: int
    owner_id: int
    # "agent", "chat" or "user" (the owner's own, no entity id).
    entity_type: str
    entity_id: int | None
    filename: str
    mime_type: str
    file_size: int
    sha256: str
    chunk_count: int
    created_at: datetime

    @classmethod
    def of(cls, document: Document) -> DocumentView:
        """The document, once flushed (its id and creation time are known then)."""
        return copied(cls, document)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryView:
    """A stored memory. `metadata` is the row's labels, as stored (empty when it has none)."""

    id: int
    owner_id: int
    agent_id: int | None
    content: str
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, memory: Memory) -> MemoryView:
        """The memory, once flushed (its id and creation time are known then)."""
        return copied(cls, memory, metadata=dict(memory.metadata_ or {}))
