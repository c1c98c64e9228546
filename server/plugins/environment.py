"""A plugin's Python environment: its own virtualenv, seeing only the plugin runtime and its wheels.

The runtime is what every plugin process needs to speak to Relais: relais-plugin (this
repository's SDK), its generated protocol module, and grpcio, grpcio-health-checking, protobuf,
mcp and uvicorn with their dependencies. It is assembled once per Relais version from Relais' own
installed distributions (hard links when the filesystem allows, copies otherwise), so plugins
speak exactly the protocol versions Relais does, nothing is downloaded, and bundles stay small.
A plugin's virtualenv reaches it through a .pth file; nothing else of Relais' environment (its
server code, its other packages) is on the plugin's path. The bundle's own requirements are
installed from its wheelhouse only (`pip install --no-index`).

    runtime = build_runtime(cache_dir)                       # cached by content
    python = await create_venv(venv_dir, runtime, bundle_dir, manifest)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
import uuid
from importlib import metadata
from pathlib import Path

import relais
import relais_plugin
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from server.plugins.manifest import WHEELHOUSE, Manifest
from server.subprocesses import communicate_within

RUNTIME_REQUIREMENTS = ("grpcio", "grpcio-health-checking", "protobuf", "mcp", "uvicorn")
PTH_NAME = "relais_plugin_runtime.pth"
PIP_TIMEOUT = 300.0


class PluginEnvironmentError(Exception):
    """The plugin's environment cannot be made; the message says why."""


def runtime_distributions() -> list[metadata.Distribution]:
    """The runtime's distributions: RUNTIME_REQUIREMENTS and what they require (extras followed)."""
    found: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in RUNTIME_REQUIREMENTS]
    followed: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), extras)
        if key in followed:
            continue
        followed.add(key)
        distribution = found.setdefault(key[0], metadata.distribution(name))
        for line in distribution.requires or ():
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in ("", *extras)]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _distribution_files(distribution: metadata.Distribution) -> list[tuple[Path, str]]:
    """(installed file, path relative to site-packages) of a distribution's importable files."""
    root = Path(str(distribution.locate_file("")))
    pairs = []
    for file in distribution.files or ():
        if file.parts and file.parts[0] == "..":
            continue  # scripts and data outside site-packages
        pairs.append((root / file, file.as_posix()))
    return pairs


def _module_files() -> list[tuple[Path, str]]:
    """The SDK and its generated protocol module, wherever they are imported from."""
    sdk = Path(relais_plugin.__file__).parent
    generated = Path(relais.__file__).parent
    pairs = [(path, f"relais_plugin/{path.relative_to(sdk).as_posix()}") for path in sorted(sdk.rglob("*.py"))]
    pairs.append((generated / "__init__.py", "relais/__init__.py"))
    protocol = generated / "plugin"
    pairs += [
        (path, f"relais/plugin/{path.relative_to(protocol).as_posix()}") for path in sorted(protocol.rglob("*.py"))
    ]
    return pairs


def runtime_files() -> list[tuple[Path, str]]:
    files = [pair for distribution in runtime_distributions() for pair in _distribution_files(distribution)]
    return [pair for pair in files + _module_files() if pair[0].is_file()]


def runtime_digest(files: list[tuple[Path, str]]) -> str:
    digest = hashlib.sha256(f"{sys.version}\n".encode())
    for source, relative in sorted(files, key=lambda pair: pair[1]):
        digest.update(f"{relative}\n".encode())
        if relative.endswith(".py") or relative.startswith("relais"):
            digest.update(source.read_bytes())
        else:
            digest.update(f"{source.stat().st_size}:{source.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def build_runtime(cache_dir: Path) -> Path:
    """The runtime's site-packages directory under `cache_dir`, assembled unless already there.
    Safe with several processes at once: each assembles apart and renames into place."""
    files = runtime_files()
    target = cache_dir / runtime_digest(files)
    site = target / "site-packages"
    if site.is_dir():
        return site
    staging = cache_dir / f".staging-{uuid.uuid4().hex}"
    try:
        for source, relative in files:
            destination = staging / "site-packages" / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, destination)
            except OSError:
                shutil.copy2(source, destination)
        try:
            staging.rename(target)
        except OSError:
            if not site.is_dir():  # another process won the race: use its copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return site


async def create_venv(venv: Path, runtime: Path, bundle: Path, manifest: Manifest) -> Path:
    """A virtualenv at `venv` that sees the runtime and the bundle's requirements; its python."""
    await _run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], "create the virtualenv")
    python = venv / "bin" / "python"
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / PTH_NAME).write_text(f"{runtime}\n")
    if manifest.requirements:
        command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-cache-dir"]
        command += ["--disable-pip-version-check", "--find-links", str(bundle / WHEELHOUSE), *manifest.requirements]
        await _run(command, "install its requirements from its wheelhouse")
    return python


async def _run(command: list[str], what: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=_pip_environment()
    )
    try:
        output, _ = await communicate_within(process, PIP_TIMEOUT)
    except TimeoutError:
        raise PluginEnvironmentError(f"could not {what}: no answer in {PIP_TIMEOUT:.0f} s") from None
    if process.returncode != 0:
        tail = output.decode(errors="replace").strip()[-1500:]
        raise PluginEnvironmentError(f"could not {what}:\n{tail}")


def _pip_environment() -> dict[str, str]:
    """pip's environment: no index, no configuration, no credentials of Relais'."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "PIP_NO_INPUT": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
    }
