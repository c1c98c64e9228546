"""Bundles checked whole before anything is used: the manifest, the Ed25519 signature, the
archive's limits and paths, every file's sha256, the routes of the descriptor set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.plugins.bundle import BundleLimits, BundleRefused, Trust, open_bundle
from server.plugins.manifest import ManifestInvalid, parse_manifest
from server.plugins.routes import RoutesRefused, TakenRoutes, read_services
from server.plugins.signing import SignatureRefused, fingerprint, generate_key, trusted_keys, verify
from tests.plugins.support import HELLO, edit_manifest, entries, packed, with_file, zipped


def trust(key: Ed25519PrivateKey) -> Trust:
    return Trust(keys={fingerprint(key.public_key()): key.public_key()})


def opened(data: bytes, key: Ed25519PrivateKey, tmp_path: Path, **limits: Any) -> Any:
    target = tmp_path / "bundle"
    target.mkdir(exist_ok=True)
    return open_bundle(data, limits=BundleLimits(**limits), trust=trust(key), into=target)


def test_a_signed_bundle_opens_with_its_files(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    bundle = opened(packed(HELLO, plugin_key), plugin_key, tmp_path)

    assert bundle.manifest.id == "hello" and bundle.signed_by == fingerprint(plugin_key.public_key())
    assert (tmp_path / "bundle" / "hello_plugin" / "main.py").is_file()
    assert (tmp_path / "bundle" / "descriptors.binpb").is_file()
    assert set(bundle.manifest.files) >= {"hello_plugin/main.py", "descriptors.binpb", "proto/hello/v1/hello.proto"}


def test_packing_is_reproducible() -> None:
    assert packed(HELLO) == packed(HELLO)


def test_unsigned_bundles_need_the_operator_s_consent(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    unsigned = packed(HELLO)

    with pytest.raises(BundleRefused, match="not signed"):
        opened(unsigned, plugin_key, tmp_path)
    allowed = open_bundle(unsigned, limits=BundleLimits(), trust=Trust(allow_unsigned=True), into=tmp_path)
    assert allowed.signed_by == "unsigned"


def test_a_signature_by_an_untrusted_key_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    with pytest.raises(SignatureRefused, match="does not trust"):
        opened(packed(HELLO, generate_key()), plugin_key, tmp_path)


def test_a_manifest_changed_after_signing_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    files = entries(packed(HELLO, plugin_key))
    manifest = json.loads(files["manifest.json"])
    manifest["version"] = "6.6.6"
    files["manifest.json"] = json.dumps(manifest).encode()

    with pytest.raises(SignatureRefused, match="does not match"):
        opened(zipped(files), plugin_key, tmp_path)


def test_a_signature_file_that_is_garbage_is_refused(plugin_key: Ed25519PrivateKey) -> None:
    keys = {fingerprint(plugin_key.public_key()): plugin_key.public_key()}
    with pytest.raises(SignatureRefused, match="not a signature file"):
        verify(b"{}", b"\x00garbage", keys)


def test_trusted_keys_read_base64_and_pem_files(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    first, second = generate_key(), generate_key()
    pem = second.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "second.pem").write_bytes(pem)
    import base64

    raw = base64.b64encode(first.public_key().public_bytes_raw()).decode()

    keys = trusted_keys(f"{raw}, {tmp_path / 'second.pem'}")

    assert set(keys) == {fingerprint(first.public_key()), fingerprint(second.public_key())}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "leaves the bundle"),
        ("/etc/evil", "leaves the bundle"),
        ("hello_plugin/../../evil", "leaves the bundle"),
        ("C:/evil", "leaves the bundle"),
        ("hello_plugin\\evil", "leaves the bundle"),
    ],
)
def test_paths_that_leave_the_bundle_are_refused(
    name: str, reason: str, tmp_path: Path, plugin_key: Ed25519PrivateKey
) -> None:
    data = with_file(packed(HELLO), name, b"x", plugin_key, listed=True)

    with pytest.raises(BundleRefused, match=reason):
        opened(data, plugin_key, tmp_path)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil").exists()


def test_a_file_missing_from_the_manifest_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    data = with_file(packed(HELLO), "hello_plugin/extra.py", b"print('hi')", plugin_key, listed=False)

    with pytest.raises(BundleRefused, match=r"not in the manifest: hello_plugin/extra\.py"):
        opened(data, plugin_key, tmp_path)


def test_a_file_that_differs_from_its_hash_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    def swap_hash(manifest: dict[str, Any]) -> None:
        manifest["files"]["hello_plugin/main.py"] = manifest["files"]["hello_plugin/__init__.py"]

    with pytest.raises(BundleRefused, match="does not match its sha256"):
        opened(edit_manifest(packed(HELLO), swap_hash, plugin_key), plugin_key, tmp_path)


def test_a_listed_file_that_is_missing_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    def add_ghost(manifest: dict[str, Any]) -> None:
        manifest["files"]["ghost.py"] = "0" * 64

    with pytest.raises(BundleRefused, match=r"missing: ghost\.py"):
        opened(edit_manifest(packed(HELLO), add_ghost, plugin_key), plugin_key, tmp_path)


def test_archive_limits(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    data = packed(HELLO, plugin_key)

    with pytest.raises(BundleRefused, match="more than the 1000 allowed"):
        opened(data, plugin_key, tmp_path, max_bytes=1000)
    with pytest.raises(BundleRefused, match="entries, more than the 3 allowed"):
        opened(data, plugin_key, tmp_path, max_entries=3)
    with pytest.raises(BundleRefused, match="once expanded"):
        opened(data, plugin_key, tmp_path, max_uncompressed_bytes=10_000)


def test_not_a_zip_is_refused(tmp_path: Path, plugin_key: Ed25519PrivateKey) -> None:
    with pytest.raises(BundleRefused, match="not a ZIP"):
        opened(b"PK\x03\x04 but not really", plugin_key, tmp_path)


def test_manifest_rules_are_listed_together() -> None:
    with pytest.raises(ManifestInvalid) as refused:
        parse_manifest(
            {
                "id": "Bad Id",
                "version": "",
                "entry_point": "x;y",
                "permissions": ["root"],
                "environment": ["RELAIS_SECRET_KEY"],
                "actions": [{"name": "go", "params_schema": {"type": "object", "properties": {"n": {"type": 7}}}}],
            },
            packed=False,
        )
    problems = " ".join(refused.value.problems)
    for expected in (
        "id 'Bad Id'",
        "version is required",
        "entry_point",
        "unknown 'root'",
        "RELAIS_SECRET_KEY",
        "go's",
    ):
        assert expected in problems


def hello_manifest(**changes: Any) -> Any:
    manifest = json.loads(entries(packed(HELLO))["manifest.json"])
    manifest.update(changes)
    return parse_manifest(manifest)


def hello_descriptors() -> bytes:
    return entries(packed(HELLO))["descriptors.binpb"]


def test_routes_must_lie_under_the_prefix() -> None:
    with pytest.raises(RoutesRefused, match="outside the plugin's api_prefix /greetings"):
        read_services(hello_descriptors(), hello_manifest(api_prefix="/greetings"), TakenRoutes())


@pytest.mark.parametrize("prefix", ["/hello", "/hello/v2"])
def test_a_prefix_overlapping_another_plugin_s_collides(prefix: str) -> None:
    taken = TakenRoutes(prefixes={"other": prefix})

    with pytest.raises(RoutesRefused, match="collides with plugin other"):
        read_services(hello_descriptors(), hello_manifest(), taken)


def test_a_service_another_plugin_serves_is_refused() -> None:
    taken = TakenRoutes(services={"hello.v1.HelloService": "other"})

    with pytest.raises(RoutesRefused, match="already served by plugin other"):
        read_services(hello_descriptors(), hello_manifest(), taken)


def test_the_served_routes_and_methods() -> None:
    served = read_services(hello_descriptors(), hello_manifest(), TakenRoutes())

    assert {(r.method, r.path) for r in served.routes} == {("GET", "/hello/greet/{name}"), ("GET", "/hello/whoami")}
    assert served.methods["/hello.v1.HelloService/Greet"].rule.permission == ""
    assert not served.methods["/hello.v1.HelloService/Greet"].rule.public
