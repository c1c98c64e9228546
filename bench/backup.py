"""Backups: export and import throughput of BackupService, and the memory they take.

    .venv/bin/python -m bench backup            # 100,000 passages (2,000 corpus files), ~10,000 messages
    .venv/bin/python -m bench backup --quick    # 2,000 passages

Everything runs in this process on SQLite and Milvus Lite, as the server configures them. The
source instance is filled directly (rows in SQL, passages with random unit vectors in the
store: no embedding, which is not what is measured). Then:

    export    BackupService.export_to: the snapshot (VACUUM INTO), every table as JSON lines,
              every passage with its vector, the ZIP written to a file
    import    BackupService.import_stream into a fresh instance, fed the archive in pieces of
              1 MiB as the ImportBackup RPC is: received to disk, every check (each entry's
              sha256), the plan, then the passages, the rows and their ledger in one transaction

Reported per phase: seconds, rows/s (SQL rows + passages), MB/s (archive bytes), and the peak of
Python allocations during the phase (tracemalloc) with the process's peak resident size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bench import common

NAME = "backup"
DIMENSION = 384
T = TypeVar("T")


async def _instance(root: Path) -> Any:
    from server.backup.service import BackupService
    from server.config import Settings
    from server.retrieval.domain import start_retrieval
    from server.storage import create_database

    settings = Settings(data_dir=root, retrieval_preload=False, llm_preload=False)
    database = create_database(settings.sqlalchemy_url)
    await database.migrate()
    retrieval = start_retrieval(settings, database)
    await retrieval.store.open()
    return database, retrieval, BackupService(database, retrieval.knowledge, settings=settings)


async def _fill(database: Any, store: Any, passages: int, messages: int) -> int:
    """Rows and passages in the source; returns the SQL rows written."""
    from sqlalchemy import insert

    from server.chats.models import Chat, Message
    from server.identity.models import User
    from server.retrieval.models import CorpusFile
    from server.retrieval.store import StoredPassage
    from server.storage.models import utcnow

    now = utcnow()
    files = max(1, passages // 50)
    users = [
        {"email": f"u{i}@bench.test", "username": f"u{i}", "full_name": f"User {i}", "password_hash": "x" * 97}
        for i in range(100)
    ]
    chats = [{"owner_id": 1 + i % 100, "title": f"Chat {i}", "message_count": 10} for i in range(messages // 10)]
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (User, [{**user, "is_active": True, "created_at": now, "updated_at": now} for user in users]),
        (Chat, [{**chat, "created_at": now, "updated_at": now} for chat in chats]),
        (
            Message,
            [
                {
                    "chat_id": 1 + i // 10,
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"Message {i}: " + "lorem ipsum dolor sit amet " * 8,
                    "status": "complete",
                    "prompt_tokens": 10,
                    "completion_tokens": 20,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(len(chats) * 10)
            ],
        ),
    ]
    keys = [uuid.uuid4().hex for _ in range(files)]
    rows.append(
        (
            CorpusFile,
            [
                {"path": f"doc{i}.txt", "sha256": "0" * 64, "file_size": 40_000, "source_key": key, "chunk_count": 50}
                for i, key in enumerate(keys)
            ],
        )
    )
    async with database.sessions() as session, session.begin():
        for model, values in rows:
            await session.execute(insert(model), values)
    generator = np.random.default_rng(20261202)
    for offset in range(0, passages, 2000):
        count = min(2000, passages - offset)
        vectors = generator.standard_normal((count, DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        batch = [
            StoredPassage(
                chunk_id=f"{keys[(offset + i) // 50]}:{(offset + i) % 50}",
                text=f"Passage {offset + i}. " + "Le routeur se réinitialise avec le bouton reset. " * 14,
                owner_id=0,
                scope="corpus",
                entity="corpus",
                source=keys[(offset + i) // 50],
                sha256="0" * 64,
                path=f"doc{(offset + i) // 50}.txt",
                start=0,
                end=700,
            )
            for i in range(count)
        ]
        await store.insert(batch, vectors)
    await store.flush()
    return sum(len(values) for _, values in rows)


async def _pieces(path: Path) -> AsyncIterator[bytes]:
    """The archive as the RPC brings it: 1 MiB messages."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while piece := await asyncio.to_thread(handle.read, 1024 * 1024):
            yield piece
    finally:
        handle.close()


async def _measured(work: Callable[[], Awaitable[T]]) -> tuple[T, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = await work()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak


def _phase(seconds: float, rows: int, archive_bytes: int, peak: int) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "mb_per_s": archive_bytes / 1e6 / seconds,
        "python_peak_mb": peak / 1e6,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


async def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    passages = 2_000 if args.quick else 100_000
    database, retrieval, backups = await _instance(root / "source")
    target_database, target_retrieval, target = await _instance(root / "target")
    try:
        sql_rows = await _fill(database, retrieval.store, passages, messages=passages // 10)
        total = sql_rows + passages
        path, export_s, export_peak = await _measured(lambda: backups.export_to(root / "archives", keep=1))
        size = path.stat().st_size
        outcome, import_s, import_peak = await _measured(lambda: target.import_stream(_pieces(path), dry_run=False))
        restored = await target_retrieval.store.count('chunk_id != ""')
        assert restored == passages, (restored, passages)
        inserted = sum(len(plan.insert) for plan in outcome.tables)
        return {
            "passages": passages,
            "sql_rows": sql_rows,
            "sql_rows_imported": inserted,
            "archive_bytes": size,
            "export": _phase(export_s, total, size, export_peak),
            "import": _phase(import_s, total, size, import_peak),
        }
    finally:
        for domain, db in ((retrieval, database), (target_retrieval, target_database)):
            await domain.close()
            await db.dispose()


def markdown(document: dict[str, Any]) -> str:
    result = document["result"]
    lines = [
        f"Backup of {result['passages']:,} passages and {result['sql_rows']:,} rows "
        f"({result['archive_bytes'] / 1e6:.1f} MB archive):",
        "",
        "| phase | seconds | rows/s | MB/s | Python peak MB | max RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for phase in ("export", "import"):
        values = result[phase]
        lines.append(
            f"| {phase} | {values['seconds']:.1f} | {values['rows_per_s']:,.0f} | {values['mb_per_s']:.1f} "
            f"| {values['python_peak_mb']:.0f} | {values['max_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="relais-bench-backup-") as root:
        result = asyncio.run(measure(args, Path(root)))
    document = {
        "benchmark": NAME,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": common.versions(("sqlalchemy", "aiosqlite", "pymilvus", "milvus-lite")),
        "result": result,
    }
    common.write_json(common.output_path(args, NAME), document)
    print(markdown(document))
    return 0
