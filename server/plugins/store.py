"""Plugin files on this replica, under <data_dir>/plugins:

    staging/<random>/                   a bundle being checked (removed unless kept)
    bundles/<id>/<sha256[:16]>/bundle/  an installed bundle, extracted
    bundles/<id>/<sha256[:16]>/venv/    its virtualenv (made at its first start here)
    work/<id>/                          the plugin's working directory, kept across versions
    runtime/<digest>/site-packages/     the plugin runtime (environment.py), shared by all

A bundle is extracted into staging and renamed into place once every check passed, so a refused
or failed install leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from server.plugins.environment import build_runtime, create_venv
from server.plugins.manifest import Manifest

READY = ".ready"


class LocalStore:
    def __init__(self, root: Path, runtime_cache: Path | None = None) -> None:
        self.root = root
        self.runtime_cache = runtime_cache or root / "runtime"
        self._venv_locks: dict[Path, asyncio.Lock] = {}
        self._runtime: Path | None = None

    def release_dir(self, plugin_id: str, sha256: str) -> Path:
        return self.root / "bundles" / plugin_id / sha256[:16]

    def bundle_dir(self, plugin_id: str, sha256: str) -> Path:
        return self.release_dir(plugin_id, sha256) / "bundle"

    def work_dir(self, plugin_id: str) -> Path:
        return self.root / "work" / plugin_id

    def has(self, plugin_id: str, sha256: str) -> bool:
        return (self.bundle_dir(plugin_id, sha256) / READY).exists()

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """An empty directory, removed on exit unless `keep` moved it."""
        path = self.root / "staging" / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    def keep(self, staging: Path, plugin_id: str, sha256: str) -> Path:
        """Move a checked bundle into place (or keep the copy already there)."""
        target = self.bundle_dir(plugin_id, sha256)
        if not self.has(plugin_id, sha256):
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / READY).touch()
            staging.rename(target)
        return target

    async def python(self, plugin_id: str, sha256: str, manifest: Manifest) -> Path:
        """The interpreter of the release's virtualenv, made on first use."""
        venv = self.release_dir(plugin_id, sha256) / "venv"
        lock = self._venv_locks.setdefault(venv, asyncio.Lock())
        async with lock:
            if not (venv / READY).exists():
                if self._runtime is None:
                    self._runtime = await asyncio.to_thread(build_runtime, self.runtime_cache)
                shutil.rmtree(venv, ignore_errors=True)
                await create_venv(venv, self._runtime, self.bundle_dir(plugin_id, sha256), manifest)
                (venv / READY).touch()
        return venv / "bin" / "python"

    def prune(self, plugin_id: str, keep: set[str]) -> None:
        """Remove the plugin's releases other than those of `keep` (sha256s)."""
        folder = self.root / "bundles" / plugin_id
        kept = {sha[:16] for sha in keep}
        for release in folder.glob("*") if folder.is_dir() else ():
            if release.name not in kept:
                shutil.rmtree(release, ignore_errors=True)
                self._venv_locks.pop(release / "venv", None)

    def remove(self, plugin_id: str) -> None:
        """Every file of the plugin: its releases and its working directory."""
        self.prune(plugin_id, set())
        shutil.rmtree(self.root / "bundles" / plugin_id, ignore_errors=True)
        shutil.rmtree(self.work_dir(plugin_id), ignore_errors=True)
