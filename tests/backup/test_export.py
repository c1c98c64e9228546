"""Exports taken while the instance keeps changing hold one consistent moment; scheduled
exports to a directory keep the newest few."""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from pathlib import Path

import httpx
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import DBAPIError

from server.backup.archive import ArchiveLimits, read_archive
from server.backup.recent_logs import RecentLogs
from server.backup.snapshot import snapshot
from server.storage import Base
from tests.backup.conftest import ADMIN_TOKEN, Populated
from tests.backup.support import entries, export_archive
from tests.support.live import LiveStack


def _lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def test_an_export_holds_the_moment_it_started_while_writes_go_on(source: Populated) -> None:
    bearer = {"Authorization": f"Bearer {source.alice.tokens['access_token']}"}
    with (
        httpx.Client(base_url=source.stack.base_url, timeout=120) as http,
        http.stream("GET", "/backup/export", headers=ADMIN_TOKEN, params={"without_logs": "true"}) as response,
    ):
        pieces = response.iter_bytes()
        first = next(pieces)
        # Written after the snapshot was taken (the first bytes are out), before the export ends.
        added = http.post("/api/memory", json={"content": "Écrit pendant l'export"}, headers=bearer)
        archive = first + b"".join(pieces)
    contents = entries(archive)
    memories = _lines(contents["db/memories.jsonl"])
    named = {
        row["source_key"]
        for name in ("documents", "memories", "corpus_files")
        for row in _lines(contents[f"db/{name}.jsonl"])
    }
    passages = _lines(contents["vectors/passages.jsonl"])

    assert added.status_code == 201, added.text
    assert added.json()["id"] not in {row["id"] for row in memories}
    assert passages and {row["source"] for row in passages} <= named
    assert not any(name.startswith("logs/") for name in contents)


def test_scheduled_exports_keep_the_newest_archives(source: Populated, tmp_path: Path) -> None:
    assert source.stack.server.backup is not None
    backups = source.stack.server.backup.service
    written = [source.stack.run(backups.export_to(tmp_path, keep=2)) for _ in range(3)]
    left = sorted(tmp_path.iterdir())

    assert left == written[1:]
    archive = read_archive(left[-1], ArchiveLimits())
    try:
        assert archive.manifest["counts"]["users"] == 3
    finally:
        archive.close()
    assert zipfile.ZipFile(io.BytesIO(left[0].read_bytes())).testzip() is None


def test_the_snapshot_is_one_read_only_moment_on_either_database(target: LiveStack) -> None:
    """PostgreSQL: one REPEATABLE READ READ ONLY transaction; SQLite: a VACUUM INTO copy."""
    database = target.server.database
    roles = Base.metadata.tables["roles"]

    async def scenario() -> tuple[int, int, int, bool]:
        async with snapshot(database, target.settings.data_dir / "backups" / "work") as connection:
            before = await connection.scalar(select(func.count()).select_from(roles))
            async with database.sessions() as session, session.begin():
                await session.execute(insert(roles).values(name="written-meanwhile", description=""))
            during = await connection.scalar(select(func.count()).select_from(roles))
            refused = False
            if database.dialect == "postgresql":
                try:
                    async with connection.begin_nested():
                        await connection.execute(insert(roles).values(name="through-the-snapshot", description=""))
                except DBAPIError as error:
                    refused = "read-only" in str(error)
        async with database.sessions() as session, session.begin():
            after = await session.scalar(select(func.count()).select_from(roles))
            await session.execute(delete(roles).where(roles.c.name == "written-meanwhile"))
        return before, during, after, refused

    before, during, after, refused = target.run(scenario())
    assert during == before and after == before + 1
    assert refused or database.dialect == "sqlite"


def test_an_export_carries_the_recent_log_lines_of_the_process(source: Populated) -> None:
    marker = f"backup log marker {uuid.uuid4().hex}"
    logging.getLogger("relais.test").warning("%s with X-API-Key: rls_secretsecret", marker)
    with httpx.Client(base_url=source.stack.base_url, timeout=120) as http:
        contents = entries(export_archive(http, ADMIN_TOKEN))
    line = next(line for line in contents["logs/relais.log"].decode().splitlines() if marker in line)
    assert "WARNING relais.test" in line and "rls_secretsecret" not in line


def test_recent_logs_are_bounded_and_redacted() -> None:
    recent = RecentLogs(limit=200)
    logger = logging.getLogger("relais.test.recent")
    logger.addHandler(recent)
    logger.setLevel(logging.INFO)
    try:
        logger.info("sign-in with Authorization: Bearer abc.def.ghi")
        logger.debug("not kept: below INFO")
        for index in range(10):
            logger.info("line %d", index)
    finally:
        logger.removeHandler(recent)
    text = recent.text().decode()
    assert len(recent.text()) <= 200 and text.endswith("line 9\n") and "debug" not in text
    assert "abc.def.ghi" not in text  # dropped by now, and redacted while it was kept
    fresh = RecentLogs()
    fresh.handle(logging.LogRecord("relais", logging.INFO, __file__, 1, "Bearer abc.def.ghi", None, None))
    assert b"abc.def.ghi" not in fresh.text() and b"Bearer ***" in fresh.text()
