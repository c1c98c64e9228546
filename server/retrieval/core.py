"""The knowledge base's core: the SQL rows, the passage store and the embedder that documents,
memories, the corpus and reply context (their own modules) stand on.

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
import os
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server import tracing
from server.agents.access import public_among
from server.auth import Principal
from server.errors import FieldViolation, PermissionDenied, ValidationFailed
from server.observability import RETRIEVAL_EMBED_SECONDS, RETRIEVAL_PASSAGES_INDEXED, RETRIEVAL_SEARCH_SECONDS
from server.retrieval import repository
from server.retrieval.chunking import chunk_spans
from server.retrieval.cleanup import Cleanup
from server.retrieval.embeddings import Embedder
from server.retrieval.models import Document, Memory
from server.retrieval.store import Filters, Hit, PassageFilter, PassageStore, SearchMode, StoredPassage
from server.storage import Database

DOCUMENT, MEMORY, CORPUS = "document", "memory", "corpus"
# Owner of the corpus's passages: no user (ids start at 1).
CORPUS_OWNER = 0
MAX_QUERY = 2000
MAX_MEMORY = 8000
MAX_RESULTS = 50
ENTITY_TYPES = ("agent", "chat", "user")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrievalSettings:
    documents_dir: Path
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


def entity_of(kind: str, entity_id: int) -> str:
    """What a passage belongs to, as the store's `entity` field holds it: "agent:3", "chat:7", "user:5"."""
    return f"{kind}:{entity_id}"


def user_id_of(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Documents and memories belong to user accounts; sign in as a user")
    return principal.user_id


def sha256_hex(data: bytes) -> str:
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


def check_text(value: str, field_name: str, limit: int) -> str:
    if not value.strip():
        raise ValidationFailed([FieldViolation(field=field_name, message="is required")])
    if len(value) > limit:
        raise ValidationFailed([FieldViolation(field=field_name, message=f"must be at most {limit} characters")])
    return value


def check_limit(value: int, default: int, field_name: str) -> int:
    if value == 0:
        return default
    if not 1 <= value <= MAX_RESULTS:
        raise ValidationFailed([FieldViolation(field=field_name, message=f"must be between 1 and {MAX_RESULTS}")])
    return value


@dataclass(slots=True)
class NamedSources:
    """The rows naming some passages' source keys, by key: a passage counts only while one does."""

    documents: dict[str, Document]
    memories: dict[str, Memory]
    corpus: set[str]

    @classmethod
    async def load(cls, session: AsyncSession, hits: Sequence[Hit]) -> NamedSources:
        """The rows naming the hits' sources, each looked up in its scope's table only (a
        corpus query costs one statement, not three)."""
        keys: dict[str, set[str]] = {DOCUMENT: set(), MEMORY: set(), CORPUS: set()}
        for hit in hits:
            keys.setdefault(hit.passage.scope, set()).add(hit.passage.source)
        documents = await repository.documents_with_keys(session, list(keys[DOCUMENT])) if keys[DOCUMENT] else []
        memories = await repository.memories_with_keys(session, list(keys[MEMORY])) if keys[MEMORY] else []
        corpus = await repository.corpus_keys_among(session, list(keys[CORPUS])) if keys[CORPUS] else set()
        return cls(
            documents={row.source_key: row for row in documents},
            memories={row.source_key: row for row in memories},
            corpus=corpus,
        )

    async def keep_readable_by(self, session: AsyncSession, reader: int) -> None:
        """Keep what the user `reader` may read now: their own documents and memories, and the
        documents of agents that are public at this moment (the corpus is everyone's)."""
        agents = [row.entity_id for row in self.documents.values() if row.entity_type == "agent" and row.entity_id]
        public_agents = await public_among(session, agents)
        self.documents = {
            key: row
            for key, row in self.documents.items()
            if row.owner_id == reader or (row.entity_type == "agent" and row.entity_id in public_agents)
        }
        self.memories = {key: row for key, row in self.memories.items() if row.owner_id == reader}

    def cite(self, hit: Hit) -> Found | None:
        """`hit` with its citation, or None when no row (left) names its source."""
        passage = hit.passage
        document_id = memory_id = None
        path = passage.path
        if passage.scope == DOCUMENT and passage.source in self.documents:
            document_id = self.documents[passage.source].id
        elif passage.scope == MEMORY and passage.source in self.memories:
            memory_id = self.memories[passage.source].id
            path = f"memory:{memory_id}"
        elif not (passage.scope == CORPUS and passage.source in self.corpus):
            return None
        return Found(
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


class KnowledgeCore:
    """Writing a text's passages under a fresh source key, and searching them with what a reader
    may see now."""

    def __init__(
        self, database: Database, store: PassageStore, embedder: Embedder, *, settings: RetrievalSettings
    ) -> None:
        self._database = database
        self._store = store
        self._embedder = embedder
        self.settings = settings
        self._documents_dir = settings.documents_dir
        self.cleanup = Cleanup(database, store, self._stored, ingest_grace_seconds=settings.ingest_grace_seconds)

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
        await self._embed_and_insert(passages, source)
        RETRIEVAL_PASSAGES_INDEXED.labels(scope).inc(len(passages))
        return len(passages)

    async def _embed_and_insert(self, passages: list[StoredPassage], source: str) -> None:
        """Embed `passages` a batch at a time, the store writing one batch while the next is
        embedded; `source`'s ingestion is said to be alive after every batch written."""
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
        except BaseException:
            if writing is not None and not writing.done():
                writing.cancel()
            raise

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

    def _stored(self, key: str) -> Path:
        """Where a document's bytes are kept: documents/<first two characters of its key>/<key>."""
        return self._documents_dir / key[:2] / key

    async def _embed(self, texts: list[str]) -> Any:
        backend = type(self._embedder).__name__
        with RETRIEVAL_EMBED_SECONDS.labels(backend).time(), tracing.span("retrieval.embed", backend=backend):
            return await self._embedder.embed(texts)

    async def _search(self, query: str, *, where: Filters, limit: int, mode: SearchMode) -> list[Hit]:
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
        if not hits:
            return []
        async with self._database.sessions() as session:
            named = await NamedSources.load(session, hits)
            if reader is not None:
                await named.keep_readable_by(session, reader)
        return [found for hit in hits if (found := named.cite(hit)) is not None]

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

    async def passage_count(self, where: PassageFilter) -> int:
        return await self._store.count(where)

    async def close(self) -> None:
        await self._store.close()
        await self._embedder.close()


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: a `.part` file, fsynced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
