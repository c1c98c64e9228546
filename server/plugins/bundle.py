"""Plugin bundles: ZIP archives checked whole before anything of them is used.

    bundle = open_bundle(data, limits=limits, trust=trust, into=staging)   # or BundleRefused
    bundle.manifest, bundle.signed_by, bundle.sha256

A bundle holds manifest.json (listing the sha256 of every other file), manifest.sig (an
Ed25519 signature of manifest.json, see signing.py), the descriptor set of the services it
serves, its code and a wheelhouse. The checks, in order: the size; the structure (entry count,
declared sizes, names that stay inside the archive, no link, device or other special file, no
entry twice); the signature; the manifest; then each file, streamed into the staging directory
while its bytes are counted (a header cannot lie about its size) and hashed. The caller removes
the staging directory whenever this raises.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.errors import InvalidArgument
from server.plugins import signing
from server.plugins.manifest import MANIFEST, SIGNATURE, Manifest, ManifestInvalid, parse_manifest
from server.zipcheck import ZipRules, check_name, check_ratio, checked_files

PIECE = 256 * 1024
MAX_NAME = 512
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Entries smaller than this are not ratio-checked (tiny files compress well and cannot bomb).
RATIO_FLOOR = 64 * 1024
FIXED_TIME = (2000, 1, 1, 0, 0, 0)


class BundleRefused(InvalidArgument):
    """The bundle fails a check: nothing of it is kept."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The plugin bundle is refused: {reason}")


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleLimits:
    max_bytes: int = 64 * 1024 * 1024
    max_uncompressed_bytes: int = 256 * 1024 * 1024
    max_entries: int = 4096
    max_ratio: float = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """Which signatures count: the administrator's keys, and whether unsigned bundles may install."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    allow_unsigned: bool = False
    # Plugins shipped with Relais come from its own installation, not from a download.
    shipped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedBundle:
    manifest: Manifest
    # The fingerprint of the signing key, "unsigned" or "shipped".
    signed_by: str
    sha256: str
    size: int


def open_bundle(data: bytes, *, limits: BundleLimits, trust: Trust, into: Path) -> VerifiedBundle:
    """Check `data` whole and write its files under `into` (an empty directory)."""
    if len(data) > limits.max_bytes:
        raise BundleRefused(f"{len(data)} bytes, more than the {limits.max_bytes} allowed")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BundleRefused(f"not a ZIP archive ({error})") from None
    with archive:
        infos = _check_structure(archive, limits)
        raw_manifest = _read_small(archive, infos.get(MANIFEST), MANIFEST)
        signed_by = _check_signature(archive, infos, raw_manifest, trust)
        try:
            manifest = parse_manifest(json.loads(raw_manifest))
        except ValueError as error:
            raise BundleRefused(f"manifest.json is not JSON ({error})") from None
        except ManifestInvalid as error:
            raise BundleRefused(error.message) from None
        _check_listing(infos, manifest, limits)
        _extract(archive, infos, manifest, limits, into)
        # The plugin reads its manifest at run time (the SDK checks its declarations against it).
        (into / MANIFEST).write_bytes(raw_manifest)
    return VerifiedBundle(
        manifest=manifest, signed_by=signed_by, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )


def _rules(limits: BundleLimits) -> ZipRules:
    return ZipRules(
        noun="bundle",
        refused=BundleRefused,
        max_entries=limits.max_entries,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        max_ratio=limits.max_ratio,
        ratio_floor=RATIO_FLOOR,
        max_name=MAX_NAME,
        folders=True,
    )


def _check_structure(archive: zipfile.ZipFile, limits: BundleLimits) -> dict[str, zipfile.ZipInfo]:
    files = checked_files(archive, _rules(limits))
    if MANIFEST not in files:
        raise BundleRefused("it has no manifest.json")
    return files


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo | None, name: str) -> bytes:
    if info is None:
        raise BundleRefused(f"it has no {name}")
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleRefused(f"{name} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        with archive.open(info) as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
        raise BundleRefused(f"{name} is corrupt ({error})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleRefused(f"{name} is larger than {MAX_MANIFEST_BYTES} bytes")
    return data


def _check_signature(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: bytes, trust: Trust) -> str:
    if trust.shipped:
        return "shipped"
    if SIGNATURE not in infos:
        if trust.allow_unsigned:
            return "unsigned"
        raise BundleRefused("it is not signed (manifest.sig is missing) and RELAIS_PLUGINS_ALLOW_UNSIGNED is off")
    return signing.verify(manifest, _read_small(archive, infos[SIGNATURE], SIGNATURE), trust.keys)


def _check_listing(infos: dict[str, zipfile.ZipInfo], manifest: Manifest, limits: BundleLimits) -> None:
    present = set(infos) - {MANIFEST, SIGNATURE}
    rules = _rules(limits)
    for name in manifest.files:
        check_name(name, rules)
    if extra := sorted(present - set(manifest.files)):
        raise BundleRefused(f"files not in the manifest: {', '.join(extra[:5])}")
    if missing := sorted(set(manifest.files) - present):
        raise BundleRefused(f"files listed in the manifest are missing: {', '.join(missing[:5])}")


def _extract(
    archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], manifest: Manifest, limits: BundleLimits, into: Path
) -> None:
    """Each listed file written under `into` while its real size and sha256 are checked."""
    total, rules = 0, _rules(limits)
    for name, expected in sorted(manifest.files.items()):
        info = infos[name]
        target = into.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        try:
            with archive.open(info) as source, open(target, "xb") as out:
                while piece := source.read(PIECE):
                    size += len(piece)
                    total += len(piece)
                    if total > limits.max_uncompressed_bytes:
                        raise BundleRefused(f"more than {limits.max_uncompressed_bytes} bytes once expanded")
                    check_ratio(name, size, info.compress_size, rules)
                    digest.update(piece)
                    out.write(piece)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
            raise BundleRefused(f"entry {name!r} is corrupt ({error})") from None
        if digest.hexdigest() != expected:
            raise BundleRefused(f"file {name!r} does not match its sha256 in the manifest")
        target.chmod(0o644)


# ----------------------------------------------------------------------------- writing


def manifest_bytes(manifest: Manifest) -> bytes:
    return json.dumps(manifest.to_json(), indent=1, ensure_ascii=False).encode() + b"\n"


def write_bundle(manifest: bytes, files: dict[str, bytes], signature: bytes | None = None) -> bytes:
    """A ZIP of the manifest, its signature when given, and `files`, byte-for-byte the same for
    the same input (fixed timestamps and order)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        entries = {MANIFEST: manifest, **({SIGNATURE: signature} if signature else {}), **dict(sorted(files.items()))}
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    return out.getvalue()


def read_entries(data: bytes) -> dict[str, bytes]:
    """Every file of a bundle one trusts (one's own, to sign it)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
