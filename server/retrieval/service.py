"""Retrieval: documents, memories and the corpus, indexed into one passage store.

    knowledge = KnowledgeBase(database, store, embedder, settings=RetrievalSettings(...))
    document = await knowledge.upload(principal, filename="guide.pdf", data=..., entity_type="agent", entity_id=3)
    found = await knowledge.for_reply(principal, chat_id=7, agent_id=3, files=[], query="...")

The SQL rows are the truth; the vector store follows them. Every ingestion of a file or a
memory writes its passages under a fresh source key, and a passage counts only while a row
names its key. So:

- a new document is visible when its row commits, after its passages are written;
- a changed corpus file switches to its new passages when its row takes the new key, and
  the old passages are deleted afterwards: a search never sees half of either version;
- a deleted document disappears when its row goes; its passages and file follow;
- a failure part-way removes what was written, and passages left behind by a crash are
  never shown (no row names them), then removed: every key that could be left behind is
  listed in SQL first (server/retrieval/cleanup.py).

Who may read what is decided in SQL (the caller's chats, agents and documents) before the
store is asked, and the store is filtered by owner (its partition key) and entity as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import tracing
from server.agents.models import Agent
from server.auth import Principal
from server.chats.models import Chat
from server.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from server.observability import RETRIEVAL_EMBED_SECONDS, RETRIEVAL_PASSAGES_INDEXED, RETRIEVAL_SEARCH_SECONDS
from server.retrieval.chunking import chunk_spans
from server.retrieval.cleanup import Cleanup
from server.retrieval.embeddings import Embedder
from server.retrieval.extract import SUPPORTED_EXTENSIONS, UnsupportedFile, extract_text, sniff
from server.retrieval.models import CorpusFile, Document, Memory
from server.retrieval.store import Hit, PassageStore, SearchMode, StoredPassage, any_of, quote
from server.storage import Database

log = logging.getLogger("relais.retrieval")

DOCUMENT, MEMORY, CORPUS = "document", "memory", "corpus"
# Owner of the corpus's passages: no user (ids start at 1).
CORPUS_OWNER = 0
MAX_QUERY = 2000
MAX_MEMORY = 8000
MAX_RESULTS = 50
ENTITY_TYPES = ("agent", "chat", "user")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalSettings:
    data_dir: Path
    corpus_dir: Path
    max_upload_bytes: int = 10 * 1024 * 1024
    max_corpus_file_bytes: int = 64 * 1024 * 1024
    chunk_chars: int = 800
    chunk_overlap: int = 100
    # Passages embedded per call; the store writes one batch while the next is embedded.
    embed_batch: int = 64
    # Passages handed to a reply, and the characters they may fill in its prompt.
    reply_passages: int = 4
    reply_chars: int = 2400
    # An ingestion silent for this long has died: what it wrote is removed.
    ingest_grace_seconds: float = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """A passage the caller may read, with its citation."""

    text: str
    score: float
    path: str
    sha256: str
    chunk_id: str
    start: int
    end: int
    document_id: int | None = None
    memory_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        source: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "chunk_id": self.chunk_id,
            "start": self.start,
            "end": self.end,
        }
        if self.document_id is not None:
            source["document_id"] = self.document_id
        return {"text": self.text, "score": self.score, "source": source}


@dataclass(slots=True, kw_only=True)
class ReindexReport:
    files_total: int = 0
    files_done: int = 0
    path: str = ""
    indexed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Documents and memories belong to user accounts; sign in as a user")
    return principal.user_id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clean_filename(name: str) -> str:
    """The client's file name without directories or control characters, at most 255 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(char for char in unicodedata.normalize("NFC", base) if unicodedata.category(char)[0] != "C")
    base = base.strip().lstrip(".")
    if not base:
        raise ValidationFailed([FieldViolation(field="file", message="needs a file name")])
    if len(base) > 255:
        stem, dot, extension = base.rpartition(".")
        base = (stem[: 254 - len(extension)] + dot + extension) if dot else base[:255]
    return base


def _check_text(value: str, field_name: str, limit: int) -> str:
    if not value.strip():
        raise ValidationFailed([FieldViolation(field=field_name, message="is required")])
    if len(value) > limit:
        raise ValidationFailed([FieldViolation(field=field_name, message=f"must be at most {limit} characters")])
    return value


def _limit(value: int, default: int, field_name: str) -> int:
    if value == 0:
        return default
    if not 1 <= value <= MAX_RESULTS:
        raise ValidationFailed([FieldViolation(field=field_name, message=f"must be between 1 and {MAX_RESULTS}")])
    return value


class KnowledgeBase:
    def __init__(
        self, database: Database, store: PassageStore, embedder: Embedder, *, settings: RetrievalSettings
    ) -> None:
        self._database = database
        self._store = store
        self._embedder = embedder
        self.settings = settings
        self._documents_dir = settings.data_dir / "documents"
        self.cleanup = Cleanup(database, store, self._stored, ingest_grace_seconds=settings.ingest_grace_seconds)
        # One corpus run at a time: two would race on the same rows.
        self._corpus_lock = asyncio.Lock()

    # ------------------------------------------------------------------ indexing

    async def _index(
        self, text: str, *, owner_id: int, scope: str, entity: str, source: str, sha256: str, path: str
    ) -> int:
        """Write `text`'s passages under `source` (a key from `_new_source`, which removes them
        if the caller's block fails)."""
        spans = chunk_spans(text, size=self.settings.chunk_chars, overlap=self.settings.chunk_overlap)
        passages = [
            StoredPassage(
                chunk_id=f"{source}:{index}",
                text=text[span.start : span.end],
                owner_id=owner_id,
                scope=scope,
                entity=entity,
                source=source,
                sha256=sha256,
                path=path,
                start=span.start,
                end=span.end,
            )
            for index, span in enumerate(spans)
        ]
        # Longest first, as sentence-transformers orders one `encode` call: a batch pads every
        # passage to its longest one, so batches of like lengths cost the model the least.
        # Chunk ids, not the order of inserts, say where each passage belongs.
        by_length = sorted(passages, key=lambda passage: len(passage.text), reverse=True)
        batch = self.settings.embed_batch
        writing: asyncio.Task[None] | None = None
        try:
            for offset in range(0, len(by_length), batch):
                part = by_length[offset : offset + batch]
                vectors = await self._embed([passage.text for passage in part])
                if writing is not None:
                    await writing
                    await self.cleanup.touch(source)
                writing = asyncio.ensure_future(self._store.insert(part, vectors))
            if writing is not None:
                await writing
            RETRIEVAL_PASSAGES_INDEXED.labels(scope).inc(len(passages))
        except BaseException:
            if writing is not None and not writing.done():
                writing.cancel()
            raise
        return len(passages)

    @contextlib.asynccontextmanager
    async def _new_source(self) -> AsyncIterator[str]:
        """A fresh source key, entered in the cleanup ledger before anything is written under it.
        The block commits the row naming the key with `cleanup.settled`; if it fails or is
        cancelled, what it wrote is removed (the caller's cancellation does not stop that, and
        whatever cannot be done now, a later sweep does)."""
        key = uuid.uuid4().hex
        await self.cleanup.ingesting(key)
        try:
            yield key
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.cleanup.abandon(key))
            raise

    # ------------------------------------------------------------------ documents

    async def upload(
        self,
        principal: Principal,
        *,
        filename: str,
        data: bytes,
        entity_type: str = "",
        entity_id: int = 0,
        conversation_id: str = "",
    ) -> Document:
        owner = _user_id(principal)
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"The file exceeds the {self.settings.max_upload_bytes // (1024 * 1024)} MB limit")
        name = clean_filename(filename)
        kind, target_id = await self._attach_target(principal, entity_type, entity_id, conversation_id)
        sha = _sha256(data)
        # The same file sent again to the same place is the document already there: nothing to redo.
        async with self._database.sessions() as session:
            existing = await session.scalar(
                select(Document).where(
                    Document.owner_id == owner,
                    Document.entity_type == kind,
                    Document.entity_id == target_id if target_id is not None else Document.entity_id.is_(None),
                    Document.sha256 == sha,
                    Document.filename == name,
                )
            )
        if existing is not None:
            return existing
        try:
            file_kind = sniff(data, name)
            text = await asyncio.to_thread(extract_text, data, file_kind)
        except UnsupportedFile as error:
            raise InvalidArgument(str(error)) from None
        async with self._new_source() as key:
            await asyncio.to_thread(write_atomically, self._stored(key), data)
            chunks = 0
            if text:
                entity = f"{kind}:{target_id if target_id is not None else owner}"
                chunks = await self._index(
                    text, owner_id=owner, scope=DOCUMENT, entity=entity, source=key, sha256=sha, path=name
                )
            if chunks:
                await self._store.flush()
            async with self._database.sessions() as session, session.begin():
                document = Document(
                    owner_id=owner,
                    entity_type=kind,
                    entity_id=target_id,
                    filename=name,
                    mime_type=file_kind.mime_type,
                    file_size=len(data),
                    sha256=sha,
                    source_key=key,
                    chunk_count=chunks,
                )
                session.add(document)
                await self.cleanup.settled(session, key)
        log.info("document %d stored (%s, %d bytes, %d passages)", document.id, file_kind.mime_type, len(data), chunks)
        return document

    def _stored(self, key: str) -> Path:
        """Where a document's bytes are kept: documents/<first two characters of its key>/<key>."""
        return self._documents_dir / key[:2] / key

    async def _attach_target(
        self, principal: Principal, entity_type: str, entity_id: int, conversation_id: str
    ) -> tuple[str, int | None]:
        """What an upload belongs to, checked: the caller's chat, or an agent the caller owns."""
        owner = _user_id(principal)
        if conversation_id:
            if not conversation_id.isdigit():
                raise NotFound(f"No conversation {conversation_id}")
            entity_type, entity_id = "chat", int(conversation_id)
        entity_type = entity_type or "user"
        if entity_type not in ENTITY_TYPES:
            raise ValidationFailed([FieldViolation(field="entity_type", message="must be agent, chat or user")])
        if entity_type == "user":
            if entity_id not in (0, owner):
                raise ValidationFailed([FieldViolation(field="entity_id", message="must be empty for user documents")])
            return "user", None
        if entity_id <= 0:
            raise ValidationFailed([FieldViolation(field="entity_id", message=f"names the {entity_type}; required")])
        async with self._database.sessions() as session:
            if entity_type == "chat":
                chat = await session.get(Chat, entity_id)
                if chat is None or chat.owner_id != owner:
                    raise NotFound(f"No chat {entity_id}")
            else:
                agent = await session.get(Agent, entity_id)
                if agent is None or not (agent.is_public or agent.owner_id == owner):
                    raise NotFound(f"No agent {entity_id}")
                if agent.owner_id != owner:
                    raise PermissionDenied("Only the agent's owner may give it documents")
        return entity_type, entity_id

    async def documents(
        self, principal: Principal, *, entity_type: str, entity_id: int, limit: int, offset: int
    ) -> tuple[list[Document], int]:
        owner = _user_id(principal)
        where = [Document.owner_id == owner]
        if entity_type:
            where.append(Document.entity_type == entity_type)
            if entity_type != "user" and entity_id:
                where.append(Document.entity_id == entity_id)
        async with self._database.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Document).where(*where))
            rows = await session.scalars(
                select(Document).where(*where).order_by(Document.id.desc()).limit(limit).offset(offset)
            )
            return list(rows), int(total or 0)

    async def document(self, principal: Principal, document_id: int) -> tuple[Document, Path]:
        """A document of the caller's and where its bytes are; 404 for anyone else's."""
        async with self._database.sessions() as session:
            document = await session.get(Document, document_id)
        if document is None or document.owner_id != _user_id(principal):
            raise NotFound(f"No document {document_id}")
        return document, self._stored(document.source_key)

    async def delete_document(self, principal: Principal, document_id: int) -> None:
        document, _ = await self.document(principal, document_id)
        async with self._database.sessions() as session, session.begin():
            await session.execute(delete(Document).where(Document.id == document.id))
            await self.cleanup.orphaned(session, [document.source_key])
        await self.cleanup.sweep([document.source_key])

    async def forget_entity(self, entity_type: str, entity_id: int) -> None:
        """Delete the documents and memories of an agent or chat that is being deleted."""
        async with self._database.sessions() as session, session.begin():
            documents = list(
                await session.scalars(
                    select(Document).where(Document.entity_type == entity_type, Document.entity_id == entity_id)
                )
            )
            memories: list[Memory] = []
            if entity_type == "agent":
                memories = list(await session.scalars(select(Memory).where(Memory.agent_id == entity_id)))
                await session.execute(delete(Memory).where(Memory.agent_id == entity_id))
            await session.execute(
                delete(Document).where(Document.entity_type == entity_type, Document.entity_id == entity_id)
            )
            keys = [d.source_key for d in documents] + [m.source_key for m in memories]
            await self.cleanup.orphaned(session, keys)
        await self.cleanup.sweep(keys)

    async def before_user_deleted(self, session: AsyncSession, user_id: int) -> None:
        """In the transaction deleting a user, whose rows cascade: their documents, their
        memories and the memories others have on their agents are entered for cleanup."""
        their_agents = select(Agent.id).where(Agent.owner_id == user_id)
        keys = list(await session.scalars(select(Document.source_key).where(Document.owner_id == user_id)))
        keys += await session.scalars(
            select(Memory.source_key).where(or_(Memory.owner_id == user_id, Memory.agent_id.in_(their_agents)))
        )
        await self.cleanup.orphaned(session, keys)

    async def after_user_deleted(self, user_id: int) -> None:
        await self.cleanup.sweep()

    # ------------------------------------------------------------------ memory

    async def remember(
        self, principal: Principal, content: str, metadata: dict[str, Any], *, agent_id: int | None = None
    ) -> Memory:
        owner = _user_id(principal)
        _check_text(content, "content", MAX_MEMORY)
        entity = f"agent:{agent_id}" if agent_id is not None else f"user:{owner}"
        async with self._new_source() as key:
            await self._index(
                content,
                owner_id=owner,
                scope=MEMORY,
                entity=entity,
                source=key,
                sha256=_sha256(content.encode()),
                path="memory",
            )
            async with self._database.sessions() as session, session.begin():
                memory = Memory(owner_id=owner, agent_id=agent_id, content=content, metadata_=metadata, source_key=key)
                session.add(memory)
                await self.cleanup.settled(session, key)
        return memory

    async def recall(self, principal: Principal, query: str, limit: int) -> list[tuple[Memory, float]]:
        """The caller's memories closest to `query`, best first, each once."""
        owner = _user_id(principal)
        _check_text(query, "q", MAX_QUERY)
        limit = _limit(limit, 5, "limit")
        hits = await self._search(
            query, where=f"owner_id == {owner} and scope == {quote(MEMORY)}", limit=limit * 3, mode="hybrid"
        )
        best: dict[str, float] = {}
        for hit in hits:
            best.setdefault(hit.passage.source, hit.score)
        async with self._database.sessions() as session:
            rows = {
                memory.source_key: memory
                for memory in await session.scalars(
                    select(Memory).where(Memory.owner_id == owner, Memory.source_key.in_(list(best)))
                )
            }
        return [(rows[key], score) for key, score in best.items() if key in rows][:limit]

    async def forget_memory(self, principal: Principal, memory_id: int) -> None:
        owner = _user_id(principal)
        async with self._database.sessions() as session, session.begin():
            memory = await session.get(Memory, memory_id)
            if memory is None or memory.owner_id != owner:
                raise NotFound(f"No memory {memory_id}")
            key = memory.source_key
            await session.delete(memory)
            await self.cleanup.orphaned(session, [key])
        await self.cleanup.sweep([key])

    async def memory_count(self, principal: Principal) -> int:
        owner = _user_id(principal)
        async with self._database.sessions() as session:
            return int(
                await session.scalar(select(func.count()).select_from(Memory).where(Memory.owner_id == owner)) or 0
            )

    # ------------------------------------------------------------------ corpus

    async def query_corpus(self, query: str, top_k: int, *, mode: SearchMode = "hybrid") -> list[Found]:
        _check_text(query, "query", MAX_QUERY)
        top_k = _limit(top_k, 5, "top_k")
        hits = await self._search(query, where=f"scope == {quote(CORPUS)}", limit=top_k * 2, mode=mode)
        return (await self._visible(hits))[:top_k]

    async def search(
        self, principal: Principal, query: str, *, limit: int, documents: bool = True, corpus: bool = True
    ) -> list[Found]:
        """Passages of the caller's own documents and/or the corpus closest to `query`, best
        first, with their citations (the search_documents tool)."""
        owner = _user_id(principal)
        _check_text(query, "query", MAX_QUERY)
        limit = _limit(limit, 5, "limit")
        clauses = []
        if documents:
            clauses.append(f"(owner_id == {owner} and scope == {quote(DOCUMENT)})")
        if corpus:
            clauses.append(f"scope == {quote(CORPUS)}")
        if not clauses:
            return []
        hits = await self._search(query, where=" or ".join(clauses), limit=limit * 2, mode="hybrid")
        return (await self._visible(hits))[:limit]

    def _corpus_target(self, path: str) -> Path:
        root = self.settings.corpus_dir.resolve()
        target = (root / path).resolve() if path else root
        if not target.is_relative_to(root):
            raise InvalidArgument(f"{path!r} is outside the corpus directory")
        if path and not target.exists():
            raise NotFound(f"No {path!r} in the corpus directory")
        return target

    def _corpus_files(self, target: Path) -> list[tuple[str, Path]]:
        root = self.settings.corpus_dir.resolve()
        if target.is_file():
            candidates: Iterable[Path] = [target]
        elif target.is_dir():
            candidates = sorted(target.rglob("*"))
        else:
            candidates = []
        found = []
        for candidate in candidates:
            # Under the resolved target, hence under the root; hidden files and folders are skipped.
            relative = candidate.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            # A link may point outside the corpus: follow it only when it stays inside.
            if not candidate.resolve().is_relative_to(root) or not candidate.is_file():
                continue
            if candidate.suffix.lower().lstrip(".") not in SUPPORTED_EXTENSIONS:
                continue
            found.append((relative.as_posix(), candidate))
        return found

    async def reindex(self, *, path: str = "", full: bool = True) -> AsyncIterator[ReindexReport]:
        """Index the corpus (or a part of it), yielding the report after each file and once done."""
        started = time.monotonic()
        await asyncio.to_thread(self.settings.corpus_dir.mkdir, parents=True, exist_ok=True)
        target = await asyncio.to_thread(self._corpus_target, path.strip().strip("/"))
        async with self._corpus_lock:
            files = await asyncio.to_thread(self._corpus_files, target)
            prefix = target.relative_to(self.settings.corpus_dir.resolve()).as_posix()
            report = ReindexReport(files_total=len(files))
            async with self._database.sessions() as session:
                query = select(CorpusFile)
                if prefix != ".":
                    query = query.where(or_(CorpusFile.path == prefix, CorpusFile.path.like(f"{prefix}/%")))
                known = {row.path: row for row in await session.scalars(query)}
            present = {relative for relative, _ in files}
            gone = [row for name, row in known.items() if name not in present]
            if gone:
                async with self._database.sessions() as session, session.begin():
                    await session.execute(delete(CorpusFile).where(CorpusFile.id.in_([row.id for row in gone])))
                    await self.cleanup.orphaned(session, [row.source_key for row in gone])
                await self.cleanup.sweep([row.source_key for row in gone])
                report.removed = len(gone)
            for relative, file_path in files:
                report.path = relative
                try:
                    await self._index_corpus_file(relative, file_path, known.get(relative), full, report)
                except (UnsupportedFile, OSError) as error:
                    report.failed.append((relative, str(error) or type(error).__name__))
                report.files_done += 1
                yield report
            if report.chunks:
                await self._store.flush()
            report.seconds = time.monotonic() - started
            report.finished = True
            yield report

    async def _index_corpus_file(
        self, relative: str, file_path: Path, row: CorpusFile | None, full: bool, report: ReindexReport
    ) -> None:
        data = await asyncio.to_thread(_read_bounded, file_path, self.settings.max_corpus_file_bytes)
        size = len(data)
        sha = _sha256(data)
        if row is not None and row.sha256 == sha and not full:
            report.unchanged += 1
            return
        kind = sniff(data, relative)
        text = await asyncio.to_thread(extract_text, data, kind)
        async with self._new_source() as key:
            chunks = 0
            if text:
                chunks = await self._index(
                    text, owner_id=CORPUS_OWNER, scope=CORPUS, entity=CORPUS, source=key, sha256=sha, path=relative
                )
            async with self._database.sessions() as session, session.begin():
                current = await session.scalar(select(CorpusFile).where(CorpusFile.path == relative))
                if current is None:
                    current = CorpusFile(path=relative)
                    session.add(current)
                previous = current.source_key if current.source_key else None
                current.sha256, current.file_size, current.source_key, current.chunk_count = sha, size, key, chunks
                await self.cleanup.settled(session, key)
                if previous:
                    await self.cleanup.orphaned(session, [previous])
        if previous:
            await self.cleanup.sweep([previous])
        report.indexed += 1
        report.chunks += chunks

    # ------------------------------------------------------------------ replies

    async def check_files(self, principal: Principal, files: Sequence[int]) -> list[str]:
        """The source keys of documents named in a message; 404 for any the caller does not own."""
        if not files:
            return []
        owner = _user_id(principal)
        async with self._database.sessions() as session:
            rows = {
                document.id: document.source_key
                for document in await session.scalars(
                    select(Document).where(Document.id.in_(list(files)), Document.owner_id == owner)
                )
            }
        for document_id in files:
            if document_id not in rows:
                raise NotFound(f"No document {document_id}")
        return list(rows.values())

    async def for_reply(
        self, principal: Principal, *, chat_id: int, agent_id: int | None, file_sources: Sequence[str], query: str
    ) -> list[Found]:
        """Passages for a reply in the caller's chat `chat_id`: from the agent's documents, the
        chat's, the files named with the message, and the agent's memory of this user.

        Nothing is embedded or searched when none of these exist."""
        owner = _user_id(principal)
        clauses = []
        async with self._database.sessions() as session:
            if agent_id is not None and not await _may_read_agent(session, agent_id, owner):
                agent_id = None  # made private since: its documents and memory are its owner's alone
            if agent_id is not None and await session.scalar(
                select(Document.id).where(Document.entity_type == "agent", Document.entity_id == agent_id).limit(1)
            ):
                clauses.append(f"(scope == {quote(DOCUMENT)} and entity == {quote(f'agent:{agent_id}')})")
            if await session.scalar(
                select(Document.id).where(Document.entity_type == "chat", Document.entity_id == chat_id).limit(1)
            ):
                clauses.append(
                    f"(owner_id == {owner} and scope == {quote(DOCUMENT)} and entity == {quote(f'chat:{chat_id}')})"
                )
            if agent_id is not None and await session.scalar(
                select(Memory.id).where(Memory.owner_id == owner, Memory.agent_id == agent_id).limit(1)
            ):
                clauses.append(
                    f"(owner_id == {owner} and scope == {quote(MEMORY)} and entity == {quote(f'agent:{agent_id}')})"
                )
        if file_sources:
            clauses.append(f"(owner_id == {owner} and {any_of('source', list(file_sources))})")
        if not clauses:
            return []
        limit = self.settings.reply_passages
        hits = await self._search(query[:MAX_QUERY], where=" or ".join(clauses), limit=limit * 2, mode="hybrid")
        found: list[Found] = []
        used = 0
        for passage in (await self._visible(hits, reader=owner))[:limit]:
            if used + len(passage.text) > self.settings.reply_chars and found:
                break
            found.append(passage)
            used += len(passage.text)
        return found

    async def learn(self, principal: Principal, agent_id: int, *, question: str, answer: str, chat_id: int) -> None:
        """Keep an exchange in the agent's memory of this user (learn_from_interaction)."""
        content = f"User: {question}\nAssistant: {answer}"[:MAX_MEMORY]
        await self.remember(principal, content, {"chat_id": chat_id, "learned": True}, agent_id=agent_id)

    # ------------------------------------------------------------------ search

    async def _embed(self, texts: list[str]) -> Any:
        backend = type(self._embedder).__name__
        with RETRIEVAL_EMBED_SECONDS.labels(backend).time(), tracing.span("retrieval.embed", backend=backend):
            return await self._embedder.embed(texts)

    async def _search(self, query: str, *, where: str, limit: int, mode: SearchMode) -> list[Hit]:
        with tracing.span("retrieval.search", mode=mode, limit=limit):
            vector = None
            if mode != "text":
                vector = (await self._embed([query]))[0]
            with RETRIEVAL_SEARCH_SECONDS.labels(mode).time():
                return await self._store.search(vector, query, where=where, limit=limit, mode=mode)

    async def _visible(self, hits: Sequence[Hit], *, reader: int | None = None) -> list[Found]:
        """The hits whose source a row still names (see the module's docstring) and, when `reader`
        is given, that this user may read now, as citations. Readability is decided per passage,
        whatever it hangs on: the reader's own documents and memories, and the documents of agents
        that are public at this moment; the corpus is everyone's."""
        keys = list({hit.passage.source for hit in hits})
        if not keys:
            return []
        async with self._database.sessions() as session:
            documents = {
                row.source_key: row
                for row in await session.scalars(select(Document).where(Document.source_key.in_(keys)))
            }
            memories = {
                row.source_key: row for row in await session.scalars(select(Memory).where(Memory.source_key.in_(keys)))
            }
            corpus = {
                row.source_key: row
                for row in await session.scalars(select(CorpusFile).where(CorpusFile.source_key.in_(keys)))
            }
            if reader is not None:
                public_agents = await _public_agents(session, documents.values())
                documents = {
                    key: row
                    for key, row in documents.items()
                    if row.owner_id == reader or (row.entity_type == "agent" and row.entity_id in public_agents)
                }
                memories = {key: row for key, row in memories.items() if row.owner_id == reader}
        found = []
        for hit in hits:
            passage = hit.passage
            document_id = memory_id = None
            path = passage.path
            if passage.scope == DOCUMENT and passage.source in documents:
                document_id = documents[passage.source].id
            elif passage.scope == MEMORY and passage.source in memories:
                memory_id = memories[passage.source].id
                path = f"memory:{memory_id}"
            elif not (passage.scope == CORPUS and passage.source in corpus):
                continue
            found.append(
                Found(
                    text=passage.text,
                    score=hit.score,
                    path=path,
                    sha256=passage.sha256,
                    chunk_id=passage.chunk_id,
                    start=passage.start,
                    end=passage.end,
                    document_id=document_id,
                    memory_id=memory_id,
                )
            )
        return found

    @property
    def store(self) -> PassageStore:
        return self._store

    def stored_path(self, key: str) -> Path:
        """Where the bytes of the document under source key `key` are kept."""
        return self._stored(key)

    async def embed(self, texts: list[str]) -> Any:
        return await self._embed(texts)

    @property
    def embedding_dimension(self) -> int:
        return self._embedder.dimension

    async def passage_count(self, where: str) -> int:
        return await self._store.count(where)

    async def close(self) -> None:
        await self._store.close()
        await self._embedder.close()


async def _may_read_agent(session: AsyncSession, agent_id: int, user_id: int) -> bool:
    agent = await session.get(Agent, agent_id)
    return agent is not None and (agent.is_public or agent.owner_id == user_id)


async def _public_agents(session: AsyncSession, documents: Iterable[Document]) -> set[int]:
    """The agents among those `documents` hang on that are public now."""
    wanted = {row.entity_id for row in documents if row.entity_type == "agent" and row.entity_id is not None}
    if not wanted:
        return set()
    return set(await session.scalars(select(Agent.id).where(Agent.id.in_(wanted), Agent.is_public)))


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsupportedFile(f"larger than {limit} bytes")
    return data


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a `.part` file, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
