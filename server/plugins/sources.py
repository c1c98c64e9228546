"""Where InstallPlugin finds a bundle: a local path (a bundle .zip, or a directory holding an
unpacked bundle, manifest.json at its root) or a git repository holding an unpacked bundle.

    data = await fetch(source, version, scratch, max_bytes=…)   # the bundle's bytes, or InvalidArgument

A directory is zipped as it is (links refused) and then checked like any upload.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from server.errors import FieldViolation, InvalidArgument, ValidationFailed
from server.plugins.bundle import write_bundle
from server.plugins.manifest import MANIFEST, SIGNATURE
from server.subprocesses import communicate_within

GIT_TIMEOUT = 120.0
MAX_SOURCE = 2048
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]")
GIT_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")


def is_git_url(source: str) -> bool:
    return source.startswith(GIT_SCHEMES) or bool(_SCP_LIKE.match(source)) or source.endswith(".git")


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed([FieldViolation(field="source", message=message)])


async def fetch(source: str, version: str, scratch: Path, *, max_bytes: int) -> bytes:
    if not source or len(source) > MAX_SOURCE or source.startswith("-") or "\x00" in source:
        raise _refuse(f"must be a local path or a git URL of at most {MAX_SOURCE} characters")
    if is_git_url(source):
        checkout = scratch / "checkout"
        await _clone(source, version, checkout)
        return await asyncio.to_thread(zip_directory, checkout, max_bytes=max_bytes)
    return await asyncio.to_thread(_read_local, source, max_bytes)


def _read_local(source: str, max_bytes: int) -> bytes:
    path = Path(source).expanduser()
    if path.is_file():
        if path.stat().st_size > max_bytes:
            raise InvalidArgument(f"The plugin bundle is refused: {path.stat().st_size} bytes, more than {max_bytes}")
        return path.read_bytes()
    if path.is_dir():
        return zip_directory(path, max_bytes=max_bytes)
    raise _refuse(f"{path} is neither a file, a directory nor a git URL this server can reach")


def zip_directory(root: Path, *, max_bytes: int) -> bytes:
    """An unpacked bundle zipped as it is (the bundle checks then apply)."""
    if not (root / MANIFEST).is_file():
        raise _refuse(f"{root.name or root} holds no {MANIFEST} at its root (an unpacked bundle is expected)")
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == ".git":
            continue
        if path.is_symlink():
            raise InvalidArgument(f"The plugin bundle is refused: {relative} is a symbolic link")
        if path.is_file():
            total += path.stat().st_size
            if total > max_bytes:
                raise InvalidArgument(f"The plugin bundle is refused: more than {max_bytes} bytes")
            files[relative.as_posix()] = path.read_bytes()
    manifest = files.pop(MANIFEST)
    signature = files.pop(SIGNATURE, None)
    return write_bundle(manifest, files, signature)


async def _clone(url: str, version: str, into: Path) -> None:
    refs = await _git("ls-remote", "--heads", "--tags", "--", url, what=f"reach {url}")
    names = {line.split("\t")[-1].removeprefix("refs/heads/").removeprefix("refs/tags/") for line in refs.splitlines()}
    branch = next((ref for ref in (version, f"v{version}") if version and ref in names), None)
    command = ["clone", "--depth", "1", "--no-tags", "--single-branch"]
    command += ["--branch", branch] if branch else []
    await _git(*command, "--", url, str(into), what=f"clone {url}")


async def _git(*arguments: str, what: str) -> str:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        # Never prompt, never run a helper program through an ext:: URL.
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    try:
        process = await asyncio.create_subprocess_exec(
            "git", *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment
        )
    except OSError as error:
        raise _refuse(f"cannot {what}: git is not available ({error})") from None
    try:
        out, err = await communicate_within(process, GIT_TIMEOUT)
    except TimeoutError:
        raise _refuse(f"cannot {what}: no answer within {GIT_TIMEOUT:.0f} s") from None
    if process.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise _refuse(f"cannot {what}: {lines[-1] if lines else f'git exited with {process.returncode}'}")
    return out.decode(errors="replace")
