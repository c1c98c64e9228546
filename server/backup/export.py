"""Writing an archive: the database from one snapshot, then the passages, files, settings
and logs that the snapshot's rows name, streamed out as the ZIP is produced.

Passages and files are read after the snapshot: only those of source keys that the
snapshot's rows name are written, so the archive never holds a passage no row names.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.backup.archive import FORMAT_VERSION, ArchiveWriter
from server.backup.snapshot import revision, snapshot, table_rows
from server.backup.tables import INSTANCE_LOCAL, backup_tables
from server.retrieval.service import KnowledgeBase
from server.retrieval.store import PassageFilter, StoredPassage
from server.storage import Database

log = logging.getLogger("relais.backup")

# Tables whose rows name passages (and, for documents, stored bytes) by source key.
SOURCE_TABLES = ("documents", "memories", "corpus_files")
SOURCES_PER_QUERY = 200
FILE_PIECE = 256 * 1024
# The tail of each log kept in logs/.
LOG_TAIL_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportSource:
    database: Database
    knowledge: KnowledgeBase
    data_dir: Path
    relais_version: str
    embedding_model: str
    settings: dict[str, Any]
    # This process's recent log lines (logs/relais.log); None: none kept.
    recent_logs: Callable[[], bytes] | None = None


def passage_line(passage: StoredPassage, vector: Any) -> bytes:
    row = {
        "chunk_id": passage.chunk_id,
        "text": passage.text,
        "owner_id": passage.owner_id,
        "scope": passage.scope,
        "entity": passage.entity,
        "source": passage.source,
        "sha256": passage.sha256,
        "path": passage.path,
        "start": passage.start,
        "end": passage.end,
        # float32, little-endian: the stored bits, not a decimal rendering of them.
        "vector": base64.b64encode(vector.astype("<f4").tobytes()).decode(),
    }
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _json_line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() + b"\n"


class _Export:
    def __init__(self, source: ExportSource, *, with_logs: bool) -> None:
        self.source = source
        self.with_logs = with_logs
        self.writer = ArchiveWriter()
        self.counts: dict[str, int] = {}
        self.sources: list[str] = []
        self.documents: list[str] = []
        self.revision = ""

    def ready(self) -> Iterator[bytes]:
        """What the ZIP writer has produced since last asked (nothing while deflate buffers)."""
        pending = self.writer.drain()
        if pending:
            yield pending

    async def run(self) -> AsyncIterator[bytes]:
        async for piece in self._database():
            yield piece
        async for piece in self._vectors():
            yield piece
        async for piece in self._files():
            yield piece
        with self.writer.entry("config/settings.json") as out:
            out.write(json.dumps(self.source.settings, indent=1, sort_keys=True).encode())
        if self.with_logs:
            await asyncio.to_thread(self._logs)
        yield self.writer.finish(self._manifest())

    async def _database(self) -> AsyncIterator[bytes]:
        async with snapshot(self.source.database, self.source.data_dir / "backups" / "work") as connection:
            self.revision = await revision(connection)
            for table in backup_tables():
                count = 0
                with self.writer.entry(f"db/{table.name}.jsonl") as out:
                    async for row in table_rows(connection, table):
                        out.write(_json_line(row))
                        count += 1
                        if table.name in SOURCE_TABLES:
                            self.sources.append(row["source_key"])
                            if table.name == "documents":
                                self.documents.append(row["source_key"])
                        if count % 500 == 0:
                            for piece in self.ready():
                                yield piece
                self.counts[table.name] = count
                for piece in self.ready():
                    yield piece

    async def _vectors(self) -> AsyncIterator[bytes]:
        store = self.source.knowledge.store
        count = 0
        with self.writer.entry("vectors/passages.jsonl") as out:
            for offset in range(0, len(self.sources), SOURCES_PER_QUERY):
                where = PassageFilter(sources=tuple(self.sources[offset : offset + SOURCES_PER_QUERY]))
                async for passages, vectors in store.with_vectors(where):
                    for passage, vector in zip(passages, vectors, strict=True):
                        out.write(passage_line(passage, vector))
                    count += len(passages)
                    for piece in self.ready():
                        yield piece
        self.counts["passages"] = count

    async def _files(self) -> AsyncIterator[bytes]:
        written = 0
        for key in self.documents:
            path = self.source.knowledge.stored_path(key)
            try:
                handle = await asyncio.to_thread(open, path, "rb")
            except FileNotFoundError:
                log.warning("backup: the bytes of document %s are missing from %s", key, path)
                continue
            try:
                with self.writer.entry(f"files/documents/{key}") as out:
                    while piece := await asyncio.to_thread(handle.read, FILE_PIECE):
                        await asyncio.to_thread(out.write, piece)
                        for ready in self.ready():
                            yield ready
            finally:
                handle.close()
            written += 1
        self.counts["files"] = written

    def _logs(self) -> None:
        if self.source.recent_logs is not None:
            with self.writer.entry("logs/relais.log") as out:
                out.write(self.source.recent_logs())
        for path in sorted(self.source.data_dir.glob("*.log")):
            if path.name == "relais.log":
                continue  # the name this process's own lines take
            with open(path, "rb") as handle:
                handle.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
                tail = handle.read(LOG_TAIL_BYTES)
            with self.writer.entry(f"logs/{path.name}") as out:
                out.write(tail)

    def _manifest(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "relais_version": self.source.relais_version,
            "created_at": datetime.now(UTC).isoformat(),
            "alembic_revision": self.revision,
            "dialect": self.source.database.dialect,
            "embedding": {
                "model": self.source.embedding_model,
                "dimension": self.source.knowledge.embedding_dimension,
            },
            "counts": self.counts,
            "excluded_tables": INSTANCE_LOCAL,
        }


def write_archive(source: ExportSource, *, with_logs: bool = True) -> AsyncIterator[bytes]:
    """The archive's bytes, in pieces, as they are produced."""
    return _Export(source, with_logs=with_logs).run()
