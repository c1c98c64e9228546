"""Export an instance, import the archive into a fresh one (SQLite, and PostgreSQL: a migration
between engines), and find everything again: rows, vectors bit for bit, files byte for byte,
the same search results, and users who sign in with their passwords."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.backup.conftest import ADMIN_TOKEN, BODY_LIMIT, USER_TOKEN, Populated
from tests.backup.support import (
    edit_lines,
    entries,
    export_archive,
    import_archive,
    pack,
    resign,
    rows,
    source_keys,
    stored_files,
    vectors,
)
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.identity.helpers import login
from tests.support.live import LiveStack


@pytest.fixture(scope="module")
def archive(source: Populated) -> bytes:
    with httpx.Client(base_url=source.stack.base_url) as http:
        return export_archive(http, ADMIN_TOKEN)


def test_the_archive_lists_and_hashes_every_entry(archive: bytes, source: Populated) -> None:
    contents = entries(archive)
    manifest = json.loads(contents["manifest.json"])
    listed = {entry["path"] for entry in manifest["entries"]}

    assert listed == set(contents) - {"manifest.json"}
    assert manifest["dialect"] == "sqlite" and manifest["alembic_revision"]
    assert manifest["embedding"] == {"model": "local:all-MiniLM-L6-v2", "dimension": 384}
    assert manifest["counts"]["users"] == 3 and manifest["counts"]["files"] == 2 and manifest["counts"]["passages"] > 5
    assert list(contents).index("db/users.jsonl") < list(contents).index("db/chats.jsonl")
    assert "auth_sessions" in manifest["excluded_tables"] and "db/auth_sessions.jsonl" not in contents
    assert ADMIN_PASSWORD not in contents["config/settings.json"].decode()
    assert len(contents["logs/relais.log"]) <= 1024 * 1024
    assert "admin_password" not in json.loads(contents["config/settings.json"])


def test_only_administrators_export_and_import(source: Populated, archive: bytes) -> None:
    with httpx.Client(base_url=source.stack.base_url) as http:
        assert http.get("/backup/export", headers=USER_TOKEN).status_code == 403
        assert http.get("/backup/export").status_code == 401
        assert import_archive(http, archive, USER_TOKEN, dry_run=True).status_code == 403


def test_a_dry_run_plans_the_restore_and_changes_nothing(target: LiveStack, archive: bytes, source: Populated) -> None:
    before = rows(target)
    with httpx.Client(base_url=target.base_url) as http:
        response = import_archive(http, archive, ADMIN_TOKEN, dry_run=True)
        # Held whole, the same archive is over the instance's body limit: JSON (base64) is refused.
        whole = http.post(
            "/backup/import", json={"file": {"data": base64.b64encode(archive).decode()}}, headers=ADMIN_TOKEN
        )
    body = response.json()
    assert len(archive) > 4 * BODY_LIMIT and whole.status_code == 413
    tables = {plan["table"]: plan for plan in body["plan"]["tables"]}

    assert response.status_code == 200, body
    assert body["dry_run"] is True and body["version"] == "1"
    assert tables["users"]["insert"] == 3 and tables["messages"]["insert"] == len(rows(source.stack)["messages"])
    assert tables["permissions"]["skip"] == len(before["permissions"]) and tables["permissions"]["insert"] == 0
    assert body["plan"]["vectors_restore"] > 5 and body["plan"]["vectors_reembed"] == 0
    assert body["plan"]["files_write"] == 2
    assert any(setting["name"] == "data_dir" for setting in body["plan"]["settings"])
    assert rows(target) == before and not stored_files(target)


def test_a_restore_brings_back_every_row_vector_file_and_search_result(
    target: LiveStack, archive: bytes, source: Populated, tmp_path: Path
) -> None:
    with httpx.Client(base_url=target.base_url, timeout=120) as http:
        # "replace": the fresh instance's own built-in roles (created at its start) take the archived ones.
        applied = import_archive(http, archive, ADMIN_TOKEN, dry_run=False, policy="replace")
        assert applied.status_code == 200, applied.text
        source_rows, target_rows = rows(source.stack), rows(target)
        # Exported again from the restored instance (PostgreSQL's snapshot on that run), before anyone signs in.
        again = export_archive(http, ADMIN_TOKEN)
        keys = source_keys(source_rows)
        with httpx.Client(base_url=source.stack.base_url, timeout=120) as origin:
            alice = login(http, source.alice.email, source.alice.password)
            me = http.get("/auth/me", headers={"X-API-Key": source.api_key})
            results = [
                client.post("/rag/query", json={"query": "gratiner la soupe", "top_k": 3}, headers=ADMIN_TOKEN).json()
                for client in (origin, http)
            ]
            memories = [
                client.get(
                    "/api/memory/search",
                    params={"q": "quel framework pour JSR", "limit": 3},
                    headers={"Authorization": f"Bearer {token}"},
                ).json()["results"]
                for client, token in (
                    (origin, source.alice.tokens["access_token"]),
                    (http, alice["access_token"]),
                )
            ]
            downloads = [
                [
                    client.get(f"/api/documents/{document}", headers={"Authorization": f"Bearer {token}"}).content
                    for document in source.document_ids
                ]
                for client, token in (
                    (origin, source.alice.tokens["access_token"]),
                    (http, alice["access_token"]),
                )
            ]
        admin_login = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})

    assert applied.json()["dry_run"] is False
    assert target_rows == source_rows
    assert vectors(target, keys) == vectors(source.stack, keys) and len(vectors(target, keys)) > 5
    assert stored_files(target) == stored_files(source.stack) and len(stored_files(target)) == 2
    assert downloads[0] == downloads[1] and all(downloads[1])
    assert me.status_code == 200 and admin_login.status_code == 200
    assert results[0] == results[1] and results[1]["results"]
    assert memories[0] == memories[1] and memories[1]
    db_files = [
        {name: data for name, data in entries(body).items() if name.startswith("db/")} for body in (archive, again)
    ]
    assert db_files[0] == db_files[1]


def test_the_restored_instance_keeps_working(target: LiveStack, source: Populated) -> None:
    with httpx.Client(base_url=target.base_url, timeout=120) as http:
        alice = login(http, source.alice.email, source.alice.password)
        created = http.post("/api/chats", json={}, headers={"Authorization": f"Bearer {alice['access_token']}"})

    assert created.status_code in (200, 201), created.text
    assert created.json()["id"] > max(row["id"] for row in rows(source.stack)["chats"])


def test_importing_the_same_archive_again_skips_every_row(target: LiveStack, archive: bytes) -> None:
    with httpx.Client(base_url=target.base_url) as http:
        body = import_archive(http, archive, ADMIN_TOKEN, dry_run=False).json()

    assert all(plan["insert"] == 0 and plan["update"] == 0 for plan in body["plan"]["tables"])
    assert body["plan"]["vectors_restore"] == 0 and body["plan"]["files_write"] == 0


def test_a_changed_row_is_kept_or_replaced_by_the_policy(target: LiveStack, archive: bytes, source: Populated) -> None:
    with httpx.Client(base_url=target.base_url, timeout=120) as http:
        alice = login(http, source.alice.email, source.alice.password)
        bearer = {"Authorization": f"Bearer {alice['access_token']}"}
        agent_id = rows(target)["agents"][0]["id"]
        assert http.put(f"/api/agents/{agent_id}", json={"name": "Renamed"}, headers=bearer).is_success
        kept = import_archive(http, archive, ADMIN_TOKEN, dry_run=False, policy="keep").json()
        after_keep = rows(target)["agents"][0]["name"]
        replaced = import_archive(http, archive, ADMIN_TOKEN, dry_run=False, policy="replace").json()
    agents = {plan["table"]: plan for plan in kept["plan"]["tables"]}["agents"]

    assert after_keep == "Renamed" and agents["conflicts"] and agents["update"] == 0
    assert {plan["table"]: plan for plan in replaced["plan"]["tables"]}["agents"]["update"] == 1
    assert rows(target)["agents"][0]["name"] == "Support"
    safety = Path(replaced["plan"]["safety_export"])
    assert safety.is_file() and zipfile.ZipFile(io.BytesIO(safety.read_bytes())).testzip() is None


PASSAGES = 9000


def test_a_restore_longer_than_the_ingestion_grace_is_not_swept_meanwhile(
    target: LiveStack, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memory with 9,000 passages (18 batches for the store) restored while the cleanup
    sweeps every 50 ms with a grace of 1.5 s: the import keeps its ledger entries alive."""
    assert target.server.retrieval is not None and target.server.backup is not None
    cleanup = target.server.retrieval.knowledge.cleanup
    monkeypatch.setattr(cleanup, "_grace", timedelta(seconds=1.5))
    key = uuid.uuid4().hex
    generator = np.random.default_rng(7)

    def add_memory(memories: list[dict[str, Any]]) -> None:
        memories.append({**memories[-1], "id": memories[-1]["id"] + 1000, "source_key": key})

    def add_passages(passages: list[dict[str, Any]]) -> None:
        owner = next(row for row in passages if row["scope"] == "memory")
        for index in range(PASSAGES):
            vector = generator.standard_normal(384).astype("<f4")
            vector /= np.linalg.norm(vector)
            text = f"Souvenir numéro {index}"
            passages.append(
                {**owner, "chunk_id": f"{key}:{index}", "source": key, "text": text, "start": 0, "end": len(text)}
                | {"vector": base64.b64encode(vector.tobytes()).decode()}
            )

    contents = edit_lines(entries(archive), "db/memories.jsonl", add_memory)
    contents = edit_lines(contents, "vectors/passages.jsonl", add_passages)
    manifest = json.loads(contents["manifest.json"])
    manifest["counts"]["memories"] += 1
    manifest["counts"]["passages"] += PASSAGES
    bigger = pack(resign({**contents, "manifest.json": json.dumps(manifest).encode()}))

    async def import_while_sweeping() -> Any:
        assert target.server.backup is not None
        path = target.settings.data_dir / "bigger.zip"
        path.write_bytes(bigger)
        task = asyncio.ensure_future(target.server.backup.service.import_file(path, dry_run=False))
        while not task.done():
            await cleanup.sweep()
            await asyncio.sleep(0.05)
        return await task

    started = time.monotonic()
    outcome = target.run(import_while_sweeping(), timeout=300)
    # Only a restore that outlasts the grace shows anything.
    assert time.monotonic() - started > 2, "too quick to show anything: make the restore longer"
    assert outcome.vectors_restore >= PASSAGES
    assert len(vectors(target, [key])) == PASSAGES
