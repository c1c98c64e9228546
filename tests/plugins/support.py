"""Helpers for plugin tests: bundles built from real plugin folders, and the same bundles
rewritten the way an attacker would."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.plugins.pack import pack, sign_bundle

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "plugins" / "hello"
TASKS = ROOT / "plugins" / "tasks"
Entries = dict[str, bytes]


def entries(data: bytes) -> Entries:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def zipped(files: Entries | list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items() if isinstance(files, dict) else files:
            archive.writestr(name, data)
    return out.getvalue()


def edit_manifest(data: bytes, change: Callable[[dict[str, Any]], None], key: Ed25519PrivateKey | None) -> bytes:
    """The bundle with its manifest changed (file hashes kept as they are), signed again."""
    files = entries(data)
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig", None)
    change(manifest)
    return sign(zipped({"manifest.json": json.dumps(manifest).encode(), **files}), key)


def with_file(data: bytes, name: str, content: bytes, key: Ed25519PrivateKey | None, *, listed: bool) -> bytes:
    """The bundle with one more file, listed in the manifest (with its hash) or not."""
    files = entries(data)
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig", None)
    files[name] = content
    if listed:
        manifest["files"][name] = hashlib.sha256(content).hexdigest()
    return sign(zipped({"manifest.json": json.dumps(manifest).encode(), **files}), key)


def sign(data: bytes, key: Ed25519PrivateKey | None) -> bytes:
    return sign_bundle(data, key) if key is not None else data


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def copy_plugin(source: Path, target: Path, **changes: str) -> Path:
    """A copy of a plugin folder with plugin.toml's top-level `key = "value"` lines changed."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    toml = target / "plugin.toml"
    lines = toml.read_text().splitlines()
    for key, value in changes.items():
        lines = [f'{key} = "{value}"' if line.startswith(f"{key} =") else line for line in lines]
    toml.write_text("\n".join(lines) + "\n")
    return target


def write_plugin(target: Path, plugin_id: str, main: str, *, toml: str = "", protos: Entries | None = None) -> Path:
    """A small plugin folder: plugin.toml, <id>_plugin/main.py, optional protos."""
    module = f"{plugin_id.replace('-', '_')}_plugin"
    (target / module).mkdir(parents=True)
    (target / module / "__init__.py").write_text("")
    (target / module / "main.py").write_text(main)
    header = f'id = "{plugin_id}"\nversion = "1.0.0"\nentry_point = "{module}.main"\n'
    (target / "plugin.toml").write_text(header + toml)
    for name, text in (protos or {}).items():
        (target / "proto" / name).parent.mkdir(parents=True, exist_ok=True)
        (target / "proto" / name).write_bytes(text)
    return target


def packed(source: Path, key: Ed25519PrivateKey | None = None) -> bytes:
    return sign(pack(source), key)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(interval)


def upload(http: httpx.Client, data: bytes, **headers: str) -> httpx.Response:
    return http.post("/plugins/upload", files={"file": ("plugin.zip", data, "application/zip")}, headers=headers)


def openapi_paths(http: httpx.Client) -> dict[str, Any]:
    paths: dict[str, Any] = http.get("/openapi.json").json()["paths"]
    return paths


def leftovers(plugins_dir: Path, plugin_id: str) -> list[str]:
    """Files of `plugin_id` and unfinished installs under a data dir's plugins/ folder."""
    found = [
        *(plugins_dir / "bundles" / plugin_id).rglob("*"),
        *(plugins_dir / "work" / plugin_id).rglob("*"),
        *(plugins_dir / "staging").rglob("*"),
    ]
    return sorted(str(path.relative_to(plugins_dir)) for path in found)
