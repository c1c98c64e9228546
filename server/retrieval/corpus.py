"""The local corpus directory: indexed on demand (/rag/reindex), queried by everyone (/rag/query)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import InvalidArgument, NotFound
from server.retrieval import repository
from server.retrieval.core import (
    CORPUS,
    CORPUS_OWNER,
    MAX_QUERY,
    Found,
    KnowledgeCore,
    check_limit,
    check_text,
    sha256_hex,
)
from server.retrieval.extract import SUPPORTED_EXTENSIONS, UnsupportedFile, extract_text, sniff
from server.retrieval.models import CorpusFile
from server.retrieval.store import PassageFilter, SearchMode


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


class Corpus(KnowledgeCore):
    """Indexing the corpus directory file by file, and querying it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One corpus run at a time: two would race on the same rows.
        self._corpus_lock = asyncio.Lock()

    async def query_corpus(self, query: str, top_k: int, *, mode: SearchMode = "hybrid") -> list[Found]:
        check_text(query, "query", MAX_QUERY)
        top_k = check_limit(top_k, 5, "top_k")
        hits = await self._search(query, where=PassageFilter(scope=CORPUS), limit=top_k * 2, mode=mode)
        return (await self._visible(hits))[:top_k]

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
                known = {row.path: row for row in await repository.corpus_files(session, prefix)}
            present = {relative for relative, _ in files}
            gone = [row for name, row in known.items() if name not in present]
            if gone:
                async with self._database.sessions() as session, session.begin():
                    await repository.delete_corpus_files(session, [row.id for row in gone])
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

    async def _index_corpus_file(
        self, relative: str, file_path: Path, row: CorpusFile | None, full: bool, report: ReindexReport
    ) -> None:
        data = await asyncio.to_thread(_read_bounded, file_path, self.settings.max_corpus_file_bytes)
        size = len(data)
        sha = sha256_hex(data)
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
                current = await repository.corpus_file_at(session, relative)
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


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsupportedFile(f"larger than {limit} bytes")
    return data
