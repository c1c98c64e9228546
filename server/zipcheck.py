"""ZIP archives that come from outside (backups to import, plugin bundles): what their entries
must be before a byte of them is read. One set of rules for both, so a hole closed in one is
closed in the other."""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ZipRules:
    noun: str  # "archive", "bundle": what the messages call it
    # The caller's own refusal (a 400 that says why, in words the sender can act on).
    refused: Callable[[str], Exception]
    max_entries: int
    max_uncompressed_bytes: int
    # Uncompressed / compressed size above `ratio_floor` bytes: a bomb expands far beyond what
    # real content does (deflate reaches ~1030 on constant data).
    max_ratio: float
    ratio_floor: int
    max_name: int = 512
    # Plugin bundles may list their folders; a backup archive holds files only.
    folders: bool = False


def check_name(name: str, rules: ZipRules) -> None:
    """A plain relative path that stays inside the archive (no traversal, drive, backslash or
    control character)."""
    if (
        not name
        or len(name) > rules.max_name
        or "\\" in name
        or any(ord(char) < 32 for char in name)
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("", ".", "..") for part in name.removesuffix("/").split("/"))
    ):
        raise rules.refused(f"entry {name[:120]!r} has a path that leaves the {rules.noun} or is not plain")


def checked_files(archive: zipfile.ZipFile, rules: ZipRules) -> dict[str, zipfile.ZipInfo]:
    """The archive's files by name, once its size, its count of entries and each entry's name,
    kind, encryption and compression ratio are within `rules`."""
    infos = archive.infolist()
    if len(infos) > rules.max_entries:
        raise rules.refused(f"{len(infos)} entries, more than the {rules.max_entries} allowed")
    declared = sum(info.file_size for info in infos)
    if declared > rules.max_uncompressed_bytes:
        raise rules.refused(f"{declared} bytes once expanded, more than the {rules.max_uncompressed_bytes} allowed")
    files: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        check_name(info.filename, rules)
        if _is_folder(info, rules):
            continue
        _check_file(info, rules)
        if info.filename in files:
            raise rules.refused(f"entry {info.filename!r} appears twice")
        files[info.filename] = info
    return files


def _is_folder(info: zipfile.ZipInfo, rules: ZipRules) -> bool:
    if not info.is_dir():
        return False
    if not rules.folders or _kind(info) not in (0, stat.S_IFDIR):
        raise rules.refused(f"entry {info.filename!r} is a folder or special file")
    return True


def _check_file(info: zipfile.ZipInfo, rules: ZipRules) -> None:
    kind = _kind(info)
    if kind == stat.S_IFLNK:
        raise rules.refused(f"entry {info.filename!r} is a symbolic link")
    if kind not in (0, stat.S_IFREG):
        raise rules.refused(f"entry {info.filename!r} is a special file")
    if info.flag_bits & 0x1:
        raise rules.refused(f"entry {info.filename!r} is encrypted")
    check_ratio(info.filename, info.file_size, info.compress_size, rules)


def check_ratio(name: str, size: int, compressed: int, rules: ZipRules) -> None:
    """`size` bytes out of `compressed`: declared by the archive, or counted while reading (an
    entry's declared size can lie)."""
    if size > rules.ratio_floor and size > rules.max_ratio * max(compressed, 1):
        raise rules.refused(
            f"entry {name!r} expands {size / max(compressed, 1):.0f} times (the limit is {rules.max_ratio:.0f})"
        )


def _kind(info: zipfile.ZipInfo) -> int:
    """Unix file type bits, when the writer set them (Python's writestr sets only permissions)."""
    return stat.S_IFMT(info.external_attr >> 16)
