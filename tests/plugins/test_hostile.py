"""Hostile bundles sent to POST /plugins/upload: each refused with a clear 400, and nothing of it
left on disk or in the database."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.plugins.bundle import manifest_bytes, write_bundle
from server.plugins.pack import compile_protos, read_source_manifest
from server.plugins.signing import generate_key
from tests.plugins.support import (
    HELLO,
    copy_plugin,
    entries,
    leftovers,
    packed,
    sign,
    symlink_info,
    upload,
    with_file,
    write_plugin,
    zipped,
)
from tests.support.live import LiveStack

Build = Callable[[bytes, Ed25519PrivateKey, Path], bytes]


def traversal(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return with_file(hello, "../../escaped.py", b"import os", key, listed=True)


def absolute(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return with_file(hello, "/tmp/escaped.py", b"import os", key, listed=True)


def symlink(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    # Signing rewrites every entry as a plain file: the link is added to the signed bundle.
    files: list[tuple[zipfile.ZipInfo | str, bytes]] = list(entries(sign(hello, key)).items())
    files.append((symlink_info("hello_plugin/passwd"), b"/etc/passwd"))
    return zipped(files)


def bomb(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return with_file(hello, "data/zeros.bin", b"\0" * (40 * 1024 * 1024), key, listed=True)


def many_small(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    files = entries(hello)
    manifest = json.loads(files.pop("manifest.json"))
    files.pop("manifest.sig", None)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            archive.writestr(name, data)
        for index in range(5000):
            archive.writestr(f"junk/{index}", b"")
    return sign(out.getvalue(), key)


def bad_signature(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return sign(hello, generate_key())


def unsigned(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return hello


def tampered_after_signing(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    files = entries(sign(hello, key))
    files["hello_plugin/main.py"] += b"\nimport os; os.system('id')\n"
    return zipped(files)


def not_in_manifest(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return with_file(hello, "hello_plugin/backdoor.py", b"import os", key, listed=False)


def outside_prefix(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    return _pack_unchecked(copy_plugin(HELLO, tmp / "moved", api_prefix="/greetings"), key)


def colliding_with_relais(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    proto = b"""syntax = "proto3";
package evil.v1;
import "google/api/annotations.proto";
service HealthService {
  rpc Health(HealthRequest) returns (HealthResponse) { option (google.api.http) = {get: "/health"}; }
}
message HealthRequest {}
message HealthResponse { string status = 1; }
"""
    main = b"from relais_plugin import Plugin\nplugin = Plugin()\n"
    folder = write_plugin(
        tmp / "evil", "evil", main.decode(), toml='api_prefix = "/health"\n', protos={"evil.proto": proto}
    )
    return _pack_unchecked(folder, key)


def colliding_with_hello(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    """Another plugin (hello2, its own service) claiming hello's routes while hello is installed."""
    folder = copy_plugin(HELLO, tmp / "hello2", id="hello2")
    for path in (folder / "proto/hello/v1/hello.proto", folder / "hello_plugin/main.py"):
        path.write_text(path.read_text().replace("hello.v1", "hello2.v1"))
    return packed(folder, key)


def public_without_permission(hello: bytes, key: Ed25519PrivateKey, tmp: Path) -> bytes:
    folder = copy_plugin(HELLO, tmp / "open")
    proto = folder / "proto/hello/v1/hello.proto"
    proto.write_text(
        proto.read_text()
        .replace(
            'import "google/api/annotations.proto";',
            'import "google/api/annotations.proto";\nimport "relais/options/v1/options.proto";',
        )
        .replace(
            '{get: "/hello/whoami"};',
            '{get: "/hello/whoami"};\n    option (relais.options.v1.access) = {public: true};',
        )
    )
    return _pack_unchecked(folder, key)


def _pack_unchecked(folder: Path, key: Ed25519PrivateKey) -> bytes:
    """Pack refuses bad routes itself; an attacker builds the bundle by hand."""
    manifest = read_source_manifest(folder)
    descriptors, services = compile_protos(folder / "proto")
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    files["descriptors.binpb"] = descriptors
    manifest = replace(
        manifest,
        descriptor_set="descriptors.binpb",
        services=tuple(services),
        files={name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    )
    return sign(write_bundle(manifest_bytes(manifest), files), key)


CASES: dict[str, tuple[Build, str]] = {
    "traversal": (traversal, "leaves the bundle"),
    "absolute path": (absolute, "leaves the bundle"),
    "symlink": (symlink, "symbolic link"),
    "zip bomb": (bomb, "expands"),
    "too many entries": (many_small, "entries, more than"),
    "bad signature": (bad_signature, "does not trust"),
    "unsigned": (unsigned, "not signed"),
    "tampered after signing": (tampered_after_signing, "does not match its sha256"),
    "file not in manifest": (not_in_manifest, "not in the manifest"),
    "route outside its prefix": (outside_prefix, "outside the plugin's api_prefix"),
    "route colliding with Relais": (colliding_with_relais, "collides with Relais' own routes"),
    "route colliding with a plugin": (colliding_with_hello, "collides with plugin hello"),
    "public route without permission": (public_without_permission, "routes:public"),
}


@pytest.fixture(scope="module")
def unsigned_hello() -> bytes:
    return packed(HELLO)


@pytest.fixture(scope="module")
def installed_hello(stack: LiveStack, hello_bundle: bytes) -> None:
    """hello installed (not running): the prefix and service the collision cases want."""
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": "Bearer admin-token"}) as http:
        assert upload(http, hello_bundle).status_code == 201


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.usefixtures("installed_hello")
def test_a_hostile_bundle_is_refused_and_leaves_nothing(
    case: str,
    http: httpx.Client,
    stack: LiveStack,
    unsigned_hello: bytes,
    plugin_key: Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    build, reason = CASES[case]
    plugins_dir = stack.settings.data_dir / "plugins"
    bundle = build(unsigned_hello, plugin_key, tmp_path)
    before = http.get("/system/plugins").json(), sorted(plugins_dir.rglob("*"))

    response = upload(http, bundle)

    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert (http.get("/system/plugins").json(), sorted(plugins_dir.rglob("*"))) == before
    for plugin_id in ("evil", "hello2"):
        assert leftovers(plugins_dir, plugin_id) == []
    assert not any(Path("/tmp").glob("escaped.py"))


def test_an_oversized_upload_is_refused(http: httpx.Client) -> None:
    response = upload(http, b"PK" + b"\0" * (17 * 1024 * 1024))

    assert response.status_code == 413


def test_an_upload_without_a_file_is_a_validation_error(http: httpx.Client) -> None:
    response = http.post("/plugins/upload", data={"other": "x"})

    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "file"
