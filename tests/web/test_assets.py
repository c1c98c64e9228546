"""The web app's files as served: vendored copies match their manifest, pages carry their CSP."""

from __future__ import annotations

import hashlib
import json

import httpx

from bridge.pages import WEB_DIR

VENDOR = WEB_DIR / "vendor"


def test_vendored_files_are_the_copies_the_manifest_records() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    recorded = {path: digest for package in manifest for path, digest in package["files"].items()}

    on_disk = {
        str(path.relative_to(VENDOR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "MANIFEST.json"
    }
    assert on_disk == recorded
    assert all(package.get("generated") or package["license"] for package in manifest)
    assert all(any(p.startswith("LICENSES/") for p in pkg["files"]) for pkg in manifest if not pkg.get("generated"))


def test_the_app_is_served_at_the_root_with_a_strict_policy(http: httpx.Client) -> None:
    page = http.get("/")
    about = http.get("/about")
    script = http.get("/static/app/main.js")

    assert page.status_code == 200 and '<script type="module" src="/static/app/main.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "img-src 'self' data: blob:" in policy and "unsafe" not in policy
    assert about.status_code == 200 and 'href="/docs"' in about.text and 'href="/"' in about.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_docs_pages_load_nothing_from_elsewhere(http: httpx.Client) -> None:
    for page in ("/docs", "/redoc", "/core-docs"):
        response = http.get(page)
        assert "http://" not in response.text and "https://" not in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
