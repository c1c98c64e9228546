"""Build a bundle from a plugin's source directory (`relais plugin pack`), and sign one.

    plugin.toml          the authored manifest (manifest.py lists its keys)
    proto/**/*.proto     the plugin's services, with google.api.http bindings under its api_prefix
    <package>/…          its code (entry_point names the module Relais runs)

    data = pack(Path("plugins/hello"))                 # the bundle's bytes (unsigned)
    signed = sign_bundle(data, load_private_key(path))  # with manifest.sig

Packing compiles proto/ into descriptors.binpb (imports of google/api and relais/options resolve
from Relais' own descriptor set), downloads or builds the wheels of `requirements` into
wheelhouse/ with pip (offline with --find-links and no index), and lists every file's sha256 in
manifest.json. The same source gives the same bytes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

import grpc_tools
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import descriptor_pb2

from server.plugins import signing
from server.plugins.bundle import manifest_bytes, read_entries, write_bundle
from server.plugins.manifest import (
    DESCRIPTOR_SET,
    MANIFEST,
    SIGNATURE,
    WHEELHOUSE,
    Manifest,
    parse_manifest,
)
from server.plugins.routes import TakenRoutes, read_services

SOURCE_MANIFEST = "plugin.toml"
# Never packed: what packing writes itself, and what a working copy holds besides the source.
SKIPPED_NAMES = {MANIFEST, SIGNATURE, DESCRIPTOR_SET, WHEELHOUSE, "__pycache__", "build", "dist"}
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"


class PackError(Exception):
    """The source directory cannot be packed; the message says why."""


def read_source_manifest(source: Path) -> Manifest:
    path = source / SOURCE_MANIFEST
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PackError(f"{path}: {error}") from None
    return parse_manifest(data, packed=False)


def pack(source: Path, *, find_links: Sequence[Path] = (), no_index: bool = False) -> bytes:
    """The bundle of `source` (unsigned). PackError or ManifestInvalid say what is wrong."""
    manifest = read_source_manifest(source)
    files = _source_files(source)
    descriptor_set, services = compile_protos(source / "proto")
    if services:
        files[DESCRIPTOR_SET] = descriptor_set
    files.update(_wheelhouse(manifest.requirements, find_links=find_links, no_index=no_index))
    manifest = replace(
        manifest,
        descriptor_set=DESCRIPTOR_SET if services else "",
        services=tuple(services),
        files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    )
    # The server checks again at install, against the routes then taken; this catches a route
    # outside the prefix or on Relais' own paths while the author is still at it.
    read_services(descriptor_set, manifest, TakenRoutes())
    return write_bundle(manifest_bytes(manifest), files)


def sign_bundle(data: bytes, key: Ed25519PrivateKey) -> bytes:
    """The same bundle with manifest.sig for its manifest (replacing any previous signature)."""
    entries = read_entries(data)
    manifest = entries.pop(MANIFEST)
    entries.pop(SIGNATURE, None)
    return write_bundle(manifest, entries, signing.sign(manifest, key))


def _source_files(source: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") or part in SKIPPED_NAMES for part in relative.parts):
            continue
        if path.is_symlink():
            raise PackError(f"{path} is a symbolic link; bundles hold plain files only")
        if path.is_file() and path.suffix not in (".pyc", ".zip"):
            files[relative.as_posix()] = path.read_bytes()
    return files


def relais_descriptor_set() -> bytes:
    return resources.files("relais").joinpath("descriptors.binpb").read_bytes()


def compile_protos(proto_dir: Path) -> tuple[bytes, list[str]]:
    """(FileDescriptorSet with imports and comments, full names of the services defined) of every
    .proto under `proto_dir`; nothing when there is none."""
    proto_dir = proto_dir.resolve()
    sources = sorted(path.relative_to(proto_dir).as_posix() for path in proto_dir.rglob("*.proto"))
    if not sources:
        return b"", []
    with tempfile.TemporaryDirectory() as scratch:
        relais_set, out = Path(scratch) / "relais.binpb", Path(scratch) / "out.binpb"
        relais_set.write_bytes(relais_descriptor_set())
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={relais_set}",
            f"-I{proto_dir}",
            f"-I{WELL_KNOWN}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            "--include_source_info",
            *sources,
        ]
        result = subprocess.run(command, capture_output=True, text=True, cwd=proto_dir)
        if result.returncode != 0:
            raise PackError(f"protoc failed:\n{result.stderr.strip()}")
        data = out.read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    services = [
        f"{file.package}.{service.name}" if file.package else service.name
        for file in files.file
        if file.name in sources
        for service in file.service
    ]
    return data, services


def _wheelhouse(requirements: Sequence[str], *, find_links: Sequence[Path], no_index: bool) -> dict[str, bytes]:
    """wheelhouse/<wheel> for each wheel the requirements need (pip resolves their dependencies)."""
    if not requirements:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--wheel-dir", scratch]
        command += ["--no-index"] if no_index else []
        for link in find_links:
            command += ["--find-links", str(link)]
        result = subprocess.run([*command, *requirements], capture_output=True, text=True)
        if result.returncode != 0:
            raise PackError(f"pip could not gather the requirements' wheels:\n{result.stderr.strip()[-2000:]}")
        return {f"{WHEELHOUSE}/{path.name}": path.read_bytes() for path in sorted(Path(scratch).glob("*.whl"))}
