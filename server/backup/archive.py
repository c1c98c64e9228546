"""The archive: a ZIP written as a stream, and read back only once every check has passed.

writer = ArchiveWriter()
with writer.entry("db/users.jsonl") as out:
    out.write(b'{"id": 1}\n')
    chunks = writer.drain()           # bytes ready to send, as they are produced
chunks = writer.finish(manifest)      # manifest.json (last, it lists every other entry)

archive = read_archive(path, limits)  # raises ArchiveRefused, or returns a verified archive
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from server.errors import InvalidArgument
from server.zipcheck import ZipRules, checked_files

FORMAT_VERSION = "1"
MANIFEST = "manifest.json"
# Top-level folders an archive may hold.
FOLDERS = ("config", "db", "vectors", "files", "logs")
READ_PIECE = 1024 * 1024


class ArchiveRefused(InvalidArgument):
    """The archive fails a check: nothing of it is used."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The backup archive is refused: {reason}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLimits:
    """Declared in backup.proto (ImportBackup): keep the two in step."""

    # The archive as received.
    max_archive_bytes: int = 64 * 1024**3
    max_entries: int = 1_000_000
    max_uncompressed_bytes: int = 256 * 1024**3
    # Uncompressed size / compressed size, for entries above 1 MiB (deflate reaches ~1030 on
    # constant data; the JSON lines of real rows stay far below 100).
    max_ratio: float = 200.0
    max_manifest_bytes: int = 64 * 1024 * 1024


class _Sink(io.RawIOBase):
    """Collects what zipfile writes until it is drained (not seekable: zipfile then writes
    data descriptors instead of going back to patch headers)."""

    def __init__(self) -> None:
        super().__init__()
        self._pieces: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._pieces.append(piece)
        self._written += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._written

    def drain(self) -> bytes:
        pieces, self._pieces = self._pieces, []
        return b"".join(pieces)


class _Entry:
    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.sha256.update(data)
        self.size += len(data)


@dataclass(slots=True)
class ArchiveWriter:
    _sink: _Sink = field(default_factory=_Sink)
    entries: list[dict[str, Any]] = field(default_factory=list)
    _zip: zipfile.ZipFile = field(init=False)

    def __post_init__(self) -> None:
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)

    def entry(self, path: str) -> _EntryContext:
        return _EntryContext(self, path)

    def drain(self) -> bytes:
        return self._sink.drain()

    def finish(self, manifest: dict[str, Any]) -> bytes:
        manifest = {**manifest, "entries": self.entries}
        self._zip.writestr(_info(MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode())
        self._zip.close()
        return self._sink.drain()


class _EntryContext:
    def __init__(self, writer: ArchiveWriter, path: str) -> None:
        self._writer, self._path = writer, path

    def __enter__(self) -> _Entry:
        self._handle = self._writer._zip.open(_info(self._path), "w", force_zip64=True)
        self._entry = _Entry(self._handle)
        return self._entry

    def __exit__(self, *exc: object) -> None:
        self._handle.close()
        self._writer.entries.append(
            {"path": self._path, "size": self._entry.size, "sha256": self._entry.sha256.hexdigest()}
        )


def _info(path: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=(2000, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


# ---------------------------------------------------------------------------------- reading


@dataclass(slots=True)
class VerifiedArchive:
    manifest: dict[str, Any]
    _zip: zipfile.ZipFile

    def has(self, path: str) -> bool:
        return path in {entry["path"] for entry in self.manifest["entries"]}

    def lines(self, path: str) -> Iterator[dict[str, Any]]:
        if not self.has(path):
            return
        with self._zip.open(path) as handle:
            for line in io.TextIOWrapper(handle, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)

    def read(self, path: str) -> bytes:
        return self._zip.read(path)

    def close(self) -> None:
        self._zip.close()


def read_archive(path: Path, limits: ArchiveLimits) -> VerifiedArchive:
    """Open `path` and check it whole (structure, limits, manifest, every entry's sha256)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveRefused(f"not a ZIP archive ({error})") from None
    try:
        infos = _check_structure(archive, limits)
        manifest = _manifest(archive, infos)
        _check_entries(archive, infos, manifest)
    except BaseException:
        archive.close()
        raise
    return VerifiedArchive(manifest, archive)


def _check_structure(archive: zipfile.ZipFile, limits: ArchiveLimits) -> dict[str, zipfile.ZipInfo]:
    rules = ZipRules(
        noun="archive",
        refused=ArchiveRefused,
        max_entries=limits.max_entries,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        max_ratio=limits.max_ratio,
        ratio_floor=READ_PIECE,
        max_name=4096,  # corpus files keep their folders' names
    )
    by_name = checked_files(archive, rules)
    for name in by_name:
        if name != MANIFEST and PurePosixPath(name).parts[0] not in FOLDERS:
            raise ArchiveRefused(f"entry {name!r} is outside the archive's folders ({', '.join(FOLDERS)})")
    if MANIFEST not in by_name:
        raise ArchiveRefused("it has no manifest.json")
    if by_name[MANIFEST].file_size > limits.max_manifest_bytes:
        raise ArchiveRefused("its manifest is too large")
    return by_name


def _manifest(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except (ValueError, zipfile.BadZipFile) as error:
        raise ArchiveRefused(f"its manifest is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise ArchiveRefused("its manifest lists no entries")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveRefused(f"format version {manifest.get('format_version')!r}; this server reads {FORMAT_VERSION}")
    for key in ("alembic_revision", "dialect", "counts", "embedding"):
        if key not in manifest:
            raise ArchiveRefused(f"its manifest has no {key!r}")
    return manifest


def _check_entries(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: dict[str, Any]) -> None:
    listed: dict[str, dict[str, Any]] = {}
    for entry in manifest["entries"]:
        if not isinstance(entry, dict) or not {"path", "size", "sha256"} <= entry.keys():
            raise ArchiveRefused("its manifest has a malformed entry")
        listed[str(entry["path"])] = entry
    present = set(infos) - {MANIFEST}
    if missing := sorted(set(listed) - present):
        raise ArchiveRefused(f"entries listed in the manifest are missing: {', '.join(missing[:5])}")
    if extra := sorted(present - set(listed)):
        raise ArchiveRefused(f"entries not in the manifest: {', '.join(extra[:5])}")
    for name, entry in listed.items():
        if infos[name].file_size != entry["size"]:
            raise ArchiveRefused(f"entry {name!r} is {infos[name].file_size} bytes, the manifest says {entry['size']}")
        digest = hashlib.sha256()
        try:
            with archive.open(name) as handle:
                while piece := handle.read(READ_PIECE):
                    digest.update(piece)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ArchiveRefused(f"entry {name!r} is corrupt ({error})") from None
        if digest.hexdigest() != entry["sha256"]:
            raise ArchiveRefused(f"entry {name!r} does not match its sha256 in the manifest")
