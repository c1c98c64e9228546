"""Archives that were tampered with, or that come from a newer Relais, are refused with a clear
400 and nothing changes; an import that fails while it is applied leaves the instance as it was;
an archive of an older schema is migrated on the way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from server.backup.archive import ArchiveLimits, ArchiveRefused
from server.backup.service import BackupService
from server.storage.engine import alembic_config
from tests.backup.conftest import ADMIN_TOKEN, Populated
from tests.backup.support import (
    Entries,
    edit_lines,
    edit_manifest,
    entries,
    export_archive,
    import_archive,
    pack,
    resign,
    state,
)
from tests.support.live import LiveStack


@pytest.fixture(scope="module")
def contents(source: Populated) -> Entries:
    with httpx.Client(base_url=source.stack.base_url) as http:
        return entries(export_archive(http, ADMIN_TOKEN))


def _one_byte_changed(contents: Entries) -> Entries:
    data = bytearray(contents["db/users.jsonl"])
    data[10] ^= 0x01
    return {**contents, "db/users.jsonl": bytes(data)}


def _removed(contents: Entries) -> Entries:
    return {name: data for name, data in contents.items() if name != "db/agents.jsonl"}


def _count_edited(contents: Entries) -> Entries:
    return edit_manifest(contents, lambda manifest: manifest["counts"].update(users=2))


def _hash_edited(contents: Entries) -> Entries:
    def change(manifest: dict[str, object]) -> None:
        entry = next(e for e in manifest["entries"] if e["path"] == "db/chats.jsonl")  # type: ignore[attr-defined]
        entry["sha256"] = "0" * 64

    return edit_manifest(contents, change)


def _row_forged(contents: Entries) -> Entries:
    """A row changed and its sha256 in the manifest too, but not the row count."""
    return resign(edit_lines(contents, "db/users.jsonl", lambda rows: rows.pop()))


TAMPERED: dict[str, tuple[Callable[[Entries], Entries], str]] = {
    "one byte changed": (_one_byte_changed, "does not match its sha256"),
    "entry added": (lambda c: {**c, "files/extra.bin": b"surprise"}, "not in the manifest"),
    "entry removed": (_removed, "missing"),
    "manifest count edited": (_count_edited, "the manifest says 2"),
    "manifest hash edited": (_hash_edited, "does not match its sha256"),
    "row removed and hashes forged": (_row_forged, "the manifest says 3"),
    "newer revision": (
        lambda c: edit_manifest(c, lambda m: m.update(alembic_revision="9999")),
        "newer Relais",
    ),
    "traversal": (lambda c: resign({**c, "files/../../evil.txt": b"x"}), "leaves the archive"),
    "absolute path": (lambda c: resign({**c, "/etc/evil": b"x"}), "leaves the archive"),
    "unknown folder": (lambda c: resign({**c, "plugins/evil.py": b"x"}), "outside the archive's folders"),
    "bomb": (lambda c: resign({**c, "logs/bomb.log": bytes(64 * 1024 * 1024)}), "expands"),
    "newer format": (lambda c: edit_manifest(c, lambda m: m.update(format_version="2")), "format version"),
    "unknown table": (lambda c: resign({**c, "db/plugins.jsonl": b"{}\n"}), "not a table of this schema"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_archive_is_refused_and_nothing_changes(target: LiveStack, contents: Entries, case: str) -> None:
    change, reason = TAMPERED[case]
    before = state(target)
    with httpx.Client(base_url=target.base_url) as http:
        planned = import_archive(http, pack(change(contents)), ADMIN_TOKEN, dry_run=True)
        applied = import_archive(http, pack(change(contents)), ADMIN_TOKEN, dry_run=False, policy="replace")

    for response in (planned, applied):
        assert response.status_code == 400, response.text
        assert reason in response.json()["detail"], response.json()["detail"]
    assert state(target) == before


def test_links_and_not_a_zip_are_refused(target: LiveStack, contents: Entries) -> None:
    link = zipfile.ZipInfo("files/documents/link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with_link = resign({**contents, "files/documents/link": b"/etc/passwd"})
    before = state(target)
    with httpx.Client(base_url=target.base_url) as http:
        linked = import_archive(http, pack(with_link, infos={"files/documents/link": link}), ADMIN_TOKEN, dry_run=False)
        garbage = import_archive(http, b"not a zip at all", ADMIN_TOKEN, dry_run=False)
        empty = http.post("/backup/import", data={"dry_run": "true"}, headers=ADMIN_TOKEN)

    assert linked.status_code == 400 and "link" in linked.json()["detail"]
    assert garbage.status_code == 400 and "not a ZIP" in garbage.json()["detail"]
    assert empty.status_code in (400, 422) and "file" in empty.text
    assert state(target) == before


def test_an_import_failing_midway_leaves_the_instance_as_it_was(target: LiveStack, contents: Entries) -> None:
    """Files and passages are written, then the database refuses a row: all of it goes."""

    def break_last_message(rows: list[dict[str, object]]) -> None:
        rows[-1]["content"] = None

    broken = resign(edit_lines(contents, "db/messages.jsonl", break_last_message))
    before = state(target)
    with httpx.Client(base_url=target.base_url) as http:
        planned = import_archive(http, pack(broken), ADMIN_TOKEN, dry_run=True)
        applied = import_archive(http, pack(broken), ADMIN_TOKEN, dry_run=False, policy="replace")

    assert planned.status_code == 200 and planned.json()["plan"]["files_write"] >= 1
    assert applied.status_code == 400 and "nothing was changed" in applied.json()["detail"]
    assert state(target) == before


def _as_of(contents: Entries, revision: str) -> Entries:
    """The archive as Relais at `revision` wrote it: without the tables created since, and
    (resigned) with the revision in its manifest."""
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
        existing = set(inspect(connection).get_table_names())
    engine.dispose()
    newer = {name for name in contents if name.startswith("db/") and name[3:].removesuffix(".jsonl") not in existing}
    kept = {name: data for name, data in contents.items() if name not in newer}

    def older(manifest: dict[str, Any]) -> None:
        manifest["alembic_revision"] = revision
        for name in newer:
            manifest["counts"].pop(name[3:].removesuffix(".jsonl"), None)

    return resign(edit_manifest(kept, older))


def test_an_archive_of_an_older_schema_is_migrated(target: LiveStack, contents: Entries) -> None:
    """Revision 0005's rows are upgraded to head on the way in."""
    older = _as_of(contents, "0005")
    with httpx.Client(base_url=target.base_url) as http:
        planned = import_archive(http, pack(older), ADMIN_TOKEN, dry_run=True)
    plan = planned.json()["plan"]

    assert planned.status_code == 200, planned.text
    assert plan["migrated"] is True and plan["archive_revision"] == "0005"
    assert json.dumps(plan).count('"table"') == len(plan["tables"]) > 5


def test_a_large_archive_is_streamed_in_pieces_and_checked_whole(target: LiveStack, contents: Entries) -> None:
    """3 MiB of logs that do not compress: several pieces of 1 MiB, then the whole archive checked."""
    padded = pack(resign({**contents, "logs/relais.log": os.urandom(3 * 1024 * 1024)}))
    broken = bytearray(padded)
    broken[len(broken) // 2] ^= 0x01  # inside the big entry
    with httpx.Client(base_url=target.base_url) as http:
        planned = import_archive(http, padded, ADMIN_TOKEN, dry_run=True)
        refused = import_archive(http, bytes(broken), ADMIN_TOKEN, dry_run=True)
    assert planned.status_code == 200, planned.text
    assert refused.status_code == 400 and "logs/relais.log" in refused.json()["detail"]


def test_the_query_string_carries_the_options_as_the_local_assistant_documents(
    target: LiveStack, contents: Entries
) -> None:
    """`POST /backup/import?dry_run=false` with the multipart ZIP: a broken archive fails while
    applying (it passes the dry run), so the 400 proves the query's dry_run=false was read."""

    def break_last_message(rows: list[dict[str, object]]) -> None:
        rows[-1]["content"] = None

    broken = pack(resign(edit_lines(contents, "db/messages.jsonl", break_last_message)))
    with httpx.Client(base_url=target.base_url, timeout=120) as http:
        files = {"file": ("backup.zip", broken, "application/zip")}
        planned = http.post("/backup/import", params={"dry_run": "true"}, files=files, headers=ADMIN_TOKEN)
        applied = http.post("/backup/import?dry_run=false&conflict_policy=replace", files=files, headers=ADMIN_TOKEN)
    assert planned.status_code == 200 and planned.json()["dry_run"] is True
    assert applied.status_code == 400 and "nothing was changed" in applied.json()["detail"]


def test_an_archive_larger_than_the_limit_is_refused_as_it_arrives(target: LiveStack, contents: Entries) -> None:
    server = target.server
    assert server.backup is not None and server.retrieval is not None
    small = BackupService(
        server.database,
        server.retrieval.knowledge,
        settings=target.settings,
        limits=ArchiveLimits(max_archive_bytes=1000),
    )
    sent: list[int] = []

    async def pieces() -> AsyncIterator[bytes]:
        for index in range(100):
            sent.append(index)
            yield b"x" * 600

    with pytest.raises(ArchiveRefused, match="larger than 1000 bytes"):
        target.run(small.import_stream(pieces()))
    assert len(sent) == 2  # stopped at the piece that crossed the limit
    assert not list((target.settings.data_dir / "backups" / "work").glob("import-*"))


def test_an_import_cancelled_midway_leaves_the_instance_as_it_was(
    target: LiveStack, contents: Entries, tmp_path: Path
) -> None:
    """Cancelled (its caller gone, the server stopping) right after its first file was written."""
    assert target.server.backup is not None
    backups = target.server.backup.service
    path = tmp_path / "backup.zip"
    path.write_bytes(pack(contents))
    documents = target.settings.data_dir / "documents"
    before = state(target)

    async def cancel_midway() -> bool:
        task = asyncio.ensure_future(backups.import_file(path, dry_run=False, policy="replace"))
        # Polling the disk: the import announces nothing before it ends.
        while not task.done() and not any(found.is_file() for found in documents.rglob("*")):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert target.run(cancel_midway()), "the import ended before it could be cancelled"
    assert state(target) == before
