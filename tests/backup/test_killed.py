"""A `relais serve` killed (SIGKILL) in the middle of an import, its first file already on disk:
nothing of the archive was committed, and once restarted the cleanup sweep removes what the
import had written outside the database (files, passages)."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from server.ports import unused_port
from tests.backup.conftest import ADMIN_TOKEN, Populated
from tests.backup.support import entries, export_archive
from tests.test_cli import relais, wait_http

pytestmark = pytest.mark.slow

ADMIN = ("killed-admin@relais.test", "killed-admin-pass-1234")


def _env(data: Path, **extra: str) -> dict[str, str]:
    return {
        "RELAIS_DATA_DIR": str(data),
        "RELAIS_ADMIN_EMAIL": ADMIN[0],
        "RELAIS_ADMIN_PASSWORD": ADMIN[1],
        "RELAIS_LLM_PRELOAD": "false",
        "RELAIS_RETRIEVAL_PRELOAD": "false",
        "RELAIS_MODELS": '[{"key": "down", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}]',
        **extra,
    }


Serving = contextlib.AbstractContextManager[subprocess.Popen[str]]


def _serve(data: Path, **extra: str) -> tuple[Serving, str]:
    http_port, grpc_port = unused_port(), unused_port()
    command = ("serve", "--http-port", str(http_port), "--grpc-port", str(grpc_port))
    return relais(*command, env=_env(data, **extra)), f"http://127.0.0.1:{http_port}"


def _files(data: Path) -> list[Path]:
    return [path for path in (data / "documents").rglob("*") if path.is_file()]


def _count(data: Path, table: str) -> int:
    with sqlite3.connect(data / "relais.db") as connection:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_server_killed_mid_import_restarts_as_it_was(source: Populated, tmp_path: Path) -> None:
    with httpx.Client(base_url=source.stack.base_url, timeout=120) as http:
        archive = export_archive(http, ADMIN_TOKEN)
    data = tmp_path / "data"
    serving, url = _serve(data)
    with serving as process:
        wait_http(f"{url}/health", process)
        token = httpx.post(f"{url}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
        users_before = _count(data, "users")

        def send() -> None:
            files = {"file": ("backup.zip", archive, "application/zip")}
            headers = {"Authorization": f"Bearer {token}"}
            with contextlib.suppress(httpx.TransportError):  # the server is killed under it
                httpx.post(f"{url}/backup/import?dry_run=false", files=files, headers=headers, timeout=120)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + 60
        while not _files(data) and time.monotonic() < deadline:
            time.sleep(0.002)
        assert _files(data), "the import wrote no file"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        sender.join(30)
    # Killed before its transaction: no row of the archive, the import's keys still in the ledger.
    assert _count(data, "users") == users_before and _count(data, "messages") == 0
    assert _count(data, "retrieval_cleanup") > 0

    # Restarted with a short grace: the sweep clears the leftovers (files, then passages, then entries).
    serving, url = _serve(data, RELAIS_INGEST_GRACE_SECONDS="1", RELAIS_RETRIEVAL_CLEANUP_SECONDS="0.5")
    with serving as process:
        wait_http(f"{url}/health", process)
        deadline = time.monotonic() + 60
        while (_files(data) or _count(data, "retrieval_cleanup")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _files(data) and _count(data, "retrieval_cleanup") == 0
        token = httpx.post(f"{url}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        files = {"file": ("backup.zip", archive, "application/zip")}
        plan = httpx.post(f"{url}/backup/import", files=files, headers=headers, timeout=120).json()["plan"]
    # The instance is as before the import: all of the archive is still to insert.
    counts = json.loads(entries(archive)["manifest.json"])["counts"]
    tables = {table["table"]: table for table in plan["tables"]}
    assert tables["messages"]["insert"] == counts["messages"] > 0
    assert plan["vectors_restore"] == counts["passages"] and plan["files_write"] == counts["files"] == 2
