"""Queries of the retrieval domain: documents, memories, corpus files and the cleanup ledger.
Functions take an open session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.retrieval.models import CorpusFile, Document, Memory, PendingCleanup
from server.storage.models import utcnow
from server.storage.queries import count_rows

# The states of a retrieval_cleanup entry (see server/retrieval/cleanup.py).
INGESTING, ORPHANED = "ingesting", "orphaned"


# Documents


def documents(owner_id: int, *, entity_type: str = "", entity_id: int = 0) -> Select[tuple[Document]]:
    """An owner's documents (those of one kind of attachment, or of one agent or chat), newest first."""
    statement = select(Document).where(Document.owner_id == owner_id)
    if entity_type:
        statement = statement.where(Document.entity_type == entity_type)
        if entity_type != "user" and entity_id:
            statement = statement.where(Document.entity_id == entity_id)
    return statement.order_by(Document.id.desc())


async def get_document(session: AsyncSession, document_id: int) -> Document | None:
    return await session.get(Document, document_id)


async def uploaded(
    session: AsyncSession, owner_id: int, entity_type: str, entity_id: int | None, *, sha256: str, filename: str
) -> Document | None:
    """The owner's document of these bytes and this name attached to the same place, if any."""
    statement = select(Document).where(
        Document.owner_id == owner_id,
        Document.entity_type == entity_type,
        Document.entity_id == entity_id if entity_id is not None else Document.entity_id.is_(None),
        Document.sha256 == sha256,
        Document.filename == filename,
    )
    found: Document | None = await session.scalar(statement)
    return found


async def owned_documents(session: AsyncSession, owner_id: int, document_ids: Sequence[int]) -> list[Document]:
    """Those of `document_ids` that are the owner's."""
    statement = select(Document).where(Document.id.in_(list(document_ids)), Document.owner_id == owner_id)
    return list(await session.scalars(statement))


async def delete_document(session: AsyncSession, document_id: int) -> None:
    await session.execute(delete(Document).where(Document.id == document_id))


async def delete_attached(session: AsyncSession, entity_type: str, entity_id: int) -> list[str]:
    """Delete the documents attached to an agent or chat; their source keys."""
    statement = (
        delete(Document)
        .where(Document.entity_type == entity_type, Document.entity_id == entity_id)
        .returning(Document.source_key)
    )
    return list(await session.scalars(statement))


async def has_attached(session: AsyncSession, entity_type: str, entity_id: int) -> bool:
    """Whether any document is attached to this agent or chat."""
    statement = select(Document.id).where(Document.entity_type == entity_type, Document.entity_id == entity_id)
    return await session.scalar(statement.limit(1)) is not None


async def user_source_keys(session: AsyncSession, user_id: int, their_agents: Sequence[int]) -> list[str]:
    """The source keys of a user's documents and memories, and of the memories others have on
    `their_agents`."""
    statement = select(Document.source_key).where(Document.owner_id == user_id)
    memories = select(Memory.source_key).where(or_(Memory.owner_id == user_id, Memory.agent_id.in_(their_agents)))
    return list(await session.scalars(statement.union_all(memories)))


# Memories


async def get_memory(session: AsyncSession, memory_id: int) -> Memory | None:
    return await session.get(Memory, memory_id)


async def delete_memory(session: AsyncSession, memory_id: int) -> None:
    await session.execute(delete(Memory).where(Memory.id == memory_id))


async def memory_count(session: AsyncSession, owner_id: int) -> int:
    return await count_rows(session, select(Memory).where(Memory.owner_id == owner_id))


async def has_agent_memories(session: AsyncSession, owner_id: int, agent_id: int) -> bool:
    """Whether the agent keeps any memory of this user."""
    statement = select(Memory.id).where(Memory.owner_id == owner_id, Memory.agent_id == agent_id)
    return await session.scalar(statement.limit(1)) is not None


async def delete_agent_memories(session: AsyncSession, agent_id: int) -> list[str]:
    """Delete every memory an agent keeps, of any user; their source keys."""
    statement = delete(Memory).where(Memory.agent_id == agent_id).returning(Memory.source_key)
    return list(await session.scalars(statement))


# Corpus files


async def corpus_files(session: AsyncSession, prefix: str) -> list[CorpusFile]:
    """The corpus files at or under `prefix` ("." for all of them)."""
    statement = select(CorpusFile)
    if prefix != ".":
        statement = statement.where(or_(CorpusFile.path == prefix, CorpusFile.path.like(f"{prefix}/%")))
    return list(await session.scalars(statement))


async def corpus_file_at(session: AsyncSession, path: str) -> CorpusFile | None:
    found: CorpusFile | None = await session.scalar(select(CorpusFile).where(CorpusFile.path == path))
    return found


async def delete_corpus_files(session: AsyncSession, file_ids: Sequence[int]) -> None:
    await session.execute(delete(CorpusFile).where(CorpusFile.id.in_(list(file_ids))))


# What names a source key


async def documents_with_keys(session: AsyncSession, keys: Sequence[str]) -> list[Document]:
    return list(await session.scalars(select(Document).where(Document.source_key.in_(list(keys)))))


async def memories_with_keys(
    session: AsyncSession, keys: Sequence[str], *, owner_id: int | None = None
) -> list[Memory]:
    """The memories (the owner's, if given) whose passages are under `keys`."""
    statement = select(Memory).where(Memory.source_key.in_(list(keys)))
    if owner_id is not None:
        statement = statement.where(Memory.owner_id == owner_id)
    return list(await session.scalars(statement))


async def corpus_keys_among(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    return set(await session.scalars(select(CorpusFile.source_key).where(CorpusFile.source_key.in_(list(keys)))))


async def named_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that a document, a memory or a corpus file names."""
    in_documents = select(Document.source_key).where(Document.source_key.in_(list(keys)))
    statement = in_documents.union_all(
        select(Memory.source_key).where(Memory.source_key.in_(list(keys))),
        select(CorpusFile.source_key).where(CorpusFile.source_key.in_(list(keys))),
    )
    return set(await session.scalars(statement))


# The cleanup ledger


def enter_ingesting(session: AsyncSession, keys: Sequence[str]) -> None:
    """Enter `keys` as ingesting: passages are about to be written under them."""
    session.add_all(PendingCleanup(source_key=key, state=INGESTING) for key in keys)


async def touch_ingesting(session: AsyncSession, keys: Sequence[str]) -> int:
    """Stamp the entries of `keys` that are still ingesting; how many were."""
    statement = (
        update(PendingCleanup)
        .where(PendingCleanup.source_key.in_(list(keys)), PendingCleanup.state == INGESTING)
        .values(touched_at=utcnow())
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def settle(session: AsyncSession, key: str) -> bool:
    """Remove the entry of `key` if it is still ingesting; whether it was."""
    statement = delete(PendingCleanup).where(PendingCleanup.source_key == key, PendingCleanup.state == INGESTING)
    result = await session.execute(statement)
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def enter_orphaned(session: AsyncSession, keys: Sequence[str]) -> None:
    """Enter `keys` as orphaned, whether the ledger lists them already or not."""
    listed = PendingCleanup.source_key.in_(list(keys))
    known = set(await session.scalars(select(PendingCleanup.source_key).where(listed)))
    if known:
        await session.execute(update(PendingCleanup).where(PendingCleanup.source_key.in_(known)).values(state=ORPHANED))
    session.add_all(PendingCleanup(source_key=key, state=ORPHANED) for key in keys if key not in known)


async def claim_due(
    session: AsyncSession, keys: Sequence[str] | None, *, stale_before: datetime, limit: int
) -> list[str]:
    """Up to `limit` keys (among `keys` if given) that are orphaned or whose ingestion was last
    touched before `stale_before`, all turned orphaned: their ingestion can no longer settle them."""
    due: ColumnElement[bool] = or_(PendingCleanup.state == ORPHANED, PendingCleanup.touched_at < stale_before)
    statement = select(PendingCleanup.source_key).where(due).order_by(PendingCleanup.source_key).limit(limit)
    if keys is not None:
        statement = statement.where(PendingCleanup.source_key.in_(list(keys)))
    candidates = list(await session.scalars(statement))
    if not candidates:
        return []
    among = PendingCleanup.source_key.in_(candidates)
    # Re-checked by the UPDATE itself: an ingestion may have touched or settled a key since.
    await session.execute(update(PendingCleanup).where(among, due).values(state=ORPHANED))
    claimed = select(PendingCleanup.source_key).where(among, PendingCleanup.state == ORPHANED)
    return list(await session.scalars(claimed))


async def forget_entries(session: AsyncSession, keys: Sequence[str]) -> None:
    await session.execute(delete(PendingCleanup).where(PendingCleanup.source_key.in_(list(keys))))
