"""Helpers for backup tests: what an instance holds, read straight from its stores, and
archives rewritten the way an attacker (or a bad disk) would."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from server.backup.export import SOURCE_TABLES
from server.backup.tables import backup_tables, encode_row
from server.retrieval.store import PassageFilter
from tests.support.live import LiveStack

Entries = dict[str, bytes]


def rows(stack: LiveStack) -> dict[str, list[dict[str, Any]]]:
    """Every exported table's rows, as portable values, in primary-key order."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        found = {}
        async with stack.server.database.engine.connect() as connection:
            for table in backup_tables():
                query = select(table).order_by(*table.primary_key.columns)
                found[table.name] = [encode_row(table, row) for row in (await connection.execute(query)).mappings()]
        return found

    return stack.run(read())


def vectors(stack: LiveStack, sources: list[str]) -> dict[str, tuple[str, bytes]]:
    """chunk_id -> (text, the vector's float32 bytes) of the passages under `sources`."""

    async def read() -> dict[str, tuple[str, bytes]]:
        assert stack.server.retrieval is not None
        found = {}
        async for passages, batch in stack.server.retrieval.store.with_vectors(PassageFilter(sources=tuple(sources))):
            for passage, vector in zip(passages, batch, strict=True):
                found[passage.chunk_id] = (passage.text, vector.tobytes())
        return found

    return stack.run(read()) if sources else {}


def source_keys(table_rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted(row["source_key"] for name in SOURCE_TABLES for row in table_rows.get(name, []))


def stored_files(stack: LiveStack) -> dict[str, bytes]:
    root = stack.settings.data_dir / "documents"
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def state(stack: LiveStack) -> tuple[Any, ...]:
    """Everything an import could change: rows, passages (with vectors), files."""
    table_rows = rows(stack)

    async def count() -> int:
        assert stack.server.retrieval is not None
        return await stack.server.retrieval.store.count(PassageFilter())

    return table_rows, vectors(stack, source_keys(table_rows)), stored_files(stack), stack.run(count())


def entries(archive: bytes) -> Entries:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {info.filename: opened.read(info) for info in opened.infolist()}


def pack(contents: Entries, *, infos: dict[str, zipfile.ZipInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr((infos or {}).get(name, zipfile.ZipInfo(name)), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def resign(contents: Entries) -> Entries:
    """The manifest made to agree with the entries again (as a forger would)."""
    manifest = json.loads(contents["manifest.json"])
    manifest["entries"] = [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in contents.items()
        if name != "manifest.json"
    ]
    return {**contents, "manifest.json": json.dumps(manifest).encode()}


def edit_manifest(contents: Entries, change: Callable[[dict[str, Any]], None]) -> Entries:
    manifest = json.loads(contents["manifest.json"])
    change(manifest)
    return {**contents, "manifest.json": json.dumps(manifest).encode()}


def edit_lines(contents: Entries, path: str, change: Callable[[list[dict[str, Any]]], None]) -> Entries:
    lines = [json.loads(line) for line in contents[path].splitlines() if line.strip()]
    change(lines)
    return {**contents, path: b"".join(json.dumps(line).encode() + b"\n" for line in lines)}


def import_archive(
    http: httpx.Client, archive: bytes, headers: dict[str, str], *, dry_run: bool, policy: str = ""
) -> httpx.Response:
    data = {"dry_run": "true" if dry_run else "false"}
    if policy:
        data["conflict_policy"] = policy
    return http.post(
        "/backup/import",
        files={"file": ("backup.zip", archive, "application/zip")},
        data=data,
        headers=headers,
        timeout=600,
    )


def export_archive(http: httpx.Client, headers: dict[str, str], path: Path | None = None) -> bytes:
    with http.stream("GET", "/backup/export", headers=headers, timeout=600) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/zip"
        body = b"".join(response.iter_bytes())
    if path is not None:
        path.write_bytes(body)
    return body
