"""Every documented plugin route over HTTP, the way each document uses it: the local assistant's
/plugins (cookie + CSRF), xcore's /admin/plugins and /system/plugins (bearer)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.identity.helpers import new_account
from tests.plugins.conftest import ADMIN
from tests.plugins.support import HELLO, copy_plugin, packed, upload, wait_until
from tests.support.live import LiveStack

PLUGIN_ROUTES = [
    ("GET", "/plugins"),
    ("GET", "/admin/plugins"),
    ("GET", "/system/plugins"),
    ("GET", "/system/plugins/hello"),
    ("POST", "/system/plugins"),
    ("POST", "/plugins/upload"),
    ("POST", "/plugins/hello/enable"),
    ("POST", "/system/plugins/hello/enable"),
    ("POST", "/plugins/hello/disable"),
    ("POST", "/admin/plugins/hello/disable"),
    ("POST", "/system/plugins/hello/disable"),
    ("POST", "/plugins/hello/start"),
    ("POST", "/plugins/hello/stop"),
    ("POST", "/plugins/hello/reload"),
    ("POST", "/admin/plugins/hello/reload"),
    ("POST", "/system/plugins/hello/reload"),
    ("DELETE", "/plugins/hello"),
    ("DELETE", "/system/plugins/hello"),
    ("GET", "/admin/plugins/hello/logs"),
    ("GET", "/admin/plugins/hello/stats"),
]


def test_listings_in_each_dialect(http: httpx.Client, hello: dict[str, Any]) -> None:
    local = http.get("/plugins").json()
    admin = http.get("/admin/plugins").json()
    system = http.get("/system/plugins", params={"active_only": "true"}).json()

    entry = next(item for item in local["plugins"] if item["name"] == "hello")
    assert entry["state"] == "running" and entry["meta"]["version"] == "1.0.0"
    assert admin["total"] >= 1 and any(item["id"] == "hello" and item["active"] for item in admin["items"])
    item = next(item for item in system["items"] if item["id"] == "hello")
    assert item == {**item, "name": "Hello", "author": "Relais", "active": True, "api_prefix": "/hello"}
    assert item["tags"] == ["example"] and item["loaded_at"].endswith("Z")


def test_detail_has_routes_tools_actions_and_signature(
    http: httpx.Client, hello: dict[str, Any], plugin_key: Any
) -> None:
    detail = http.get("/system/plugins/hello").json()

    assert detail["routes"] == ["/hello/greet/{name}", "/hello/whoami"]
    assert {"method": "GET", "path": "/hello/whoami", "rpc": "/hello.v1.HelloService/WhoAmI"} in detail["endpoints"]
    assert detail["tools"] == ["greet"] and detail["actions"][0]["name"] == "hello.greet"
    assert detail["dependencies"] == [] and detail["last_reload"] is None
    from server.plugins.signing import fingerprint

    assert detail["signed_by"] == fingerprint(plugin_key.public_key()) and detail["source"] == "upload"


def test_an_unknown_plugin_is_404(http: httpx.Client) -> None:
    for method, path in (
        ("GET", "/system/plugins/nope"),
        ("POST", "/plugins/nope/enable"),
        ("DELETE", "/plugins/nope"),
    ):
        response = http.request(method, path)
        assert response.status_code == 404, (method, path, response.text)


@pytest.mark.slow
def test_upload_enable_disable_start_stop(http: httpx.Client, hello_bundle: bytes) -> None:
    installed = upload(http, hello_bundle)
    assert installed.status_code == 201
    assert installed.json() | {"plugin": None} == {
        "id": "hello",
        "status": "installed",
        "message": "Plugin installed",
        "plugin": None,
    }
    assert installed.json()["plugin"]["state"] == "installed"
    assert upload(http, hello_bundle).json()["status"] == "unchanged"
    try:
        assert http.post("/system/plugins/hello/enable").json()["state"] == "running"
        stopped = http.post("/plugins/hello/stop").json()
        assert (stopped["state"], stopped["active"], stopped["enabled"]) == ("stopped", False, True)
        assert http.post("/plugins/hello/start").json()["state"] == "running"
        disabled = http.post("/admin/plugins/hello/disable").json()
        assert (disabled["id"], disabled["active"], disabled["state"]) == ("hello", False, "disabled")
        refused = http.post("/plugins/hello/start")
        assert refused.status_code == 400 and "enable it" in refused.json()["detail"]
        assert http.post("/plugins/hello/enable").json()["active"] is True
        assert http.post("/system/plugins/hello/disable").json()["active"] is False
    finally:
        assert http.delete("/system/plugins/hello").status_code == 204


@pytest.mark.slow
def test_reload(http: httpx.Client, hello: dict[str, Any]) -> None:
    first_pid = http.get("/admin/plugins/hello/stats").json()["pid"]

    for path in ("/plugins/hello/reload", "/admin/plugins/hello/reload", "/system/plugins/hello/reload"):
        response = http.post(path)
        assert response.status_code == 200, response.text
        assert response.json() | {"plugin": None} == {
            "id": "hello",
            "status": "reloaded",
            "message": "Plugin reloaded",
            "plugin": None,
        }

    assert http.get("/admin/plugins/hello/stats").json()["pid"] != first_pid
    assert http.get("/system/plugins/hello").json()["last_reload"].endswith("Z")
    assert http.get("/hello/greet/Ann").json()["message"] == "Hello, Ann!"


def test_logs_with_tail_and_stats(http: httpx.Client, hello: dict[str, Any]) -> None:
    for name in ("a", "b", "c"):
        http.get(f"/hello/greet/{name}")
    http.get("/hello/greet/" + "x" * 101)  # refused by the plugin: an error

    logs = http.get("/admin/plugins/hello/logs", params={"tail": 2}).json()
    stats = http.get("/admin/plugins/hello/stats").json()

    assert logs["id"] == "hello" and len(logs["lines"]) == 2
    assert all({"time", "stream", "text"} <= line.keys() for line in logs["lines"])
    everything = http.get("/admin/plugins/hello/logs").json()["lines"]
    assert any(line["stream"] == "relais" and line["text"].startswith("started process") for line in everything)
    assert http.get("/admin/plugins/hello/logs", params={"tail": 0}).status_code == 422
    assert http.get("/admin/plugins/hello/logs", params={"tail": 5000}).status_code == 422
    assert stats["calls"] >= 4 and stats["errors"] >= 1 and stats["restarts"] == 0
    assert 0 < stats["latency_ms"]["p50"] <= stats["latency_ms"]["p99"] <= stats["latency_ms"]["max"]
    assert stats["memory_bytes"] > 10 * 1024 * 1024 and stats["cpu_seconds"] > 0 and stats["pid"] > 0
    assert stats["memory_limit_bytes"] == 1024 * 1024 * 1024 and stats["open_files_limit"] == 256


def test_install_from_a_local_zip_and_a_directory(http: httpx.Client, hello_bundle: bytes, tmp_path: Path) -> None:
    archive = tmp_path / "hello.zip"
    archive.write_bytes(hello_bundle)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(unpacked)

    try:
        created = http.post("/system/plugins", json={"name": "hello", "source": str(archive), "version": "1.0.0"})
        assert created.status_code == 201, created.text
        assert (created.json()["id"], created.json()["status"]) == ("hello", "installed")
        assert http.delete("/system/plugins/hello").status_code == 204
        again = http.post("/system/plugins", json={"source": str(unpacked)})
        assert again.status_code == 201 and again.json()["plugin"]["source"] == str(unpacked)
    finally:
        http.delete("/system/plugins/hello")


def test_install_checks_the_expected_name_and_version(http: httpx.Client, hello_bundle: bytes, tmp_path: Path) -> None:
    (tmp_path / "hello.zip").write_bytes(hello_bundle)

    response = http.post(
        "/system/plugins", json={"name": "other", "source": str(tmp_path / "hello.zip"), "version": "2"}
    )

    assert response.status_code == 422
    assert {d["field"] for d in response.json()["error"]["details"]} == {"name", "version"}


def _git(*args: str, cwd: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**env, "PATH": "/usr/bin:/bin"})


def test_install_from_a_git_repository_at_a_version(http: httpx.Client, plugin_key: Any, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    _git("init", "-q", "-b", "main", cwd=repository)
    for version in ("1.0.0", "2.0.0"):
        source = copy_plugin(HELLO, tmp_path / f"hello-{version}", version=version)
        with zipfile.ZipFile(__import__("io").BytesIO(packed(source, plugin_key))) as bundle:
            bundle.extractall(repository)
        _git("add", "-A", cwd=repository)
        _git("commit", "-qm", version, cwd=repository)
        _git("tag", f"v{version}", cwd=repository)

    try:
        older = http.post("/system/plugins", json={"source": f"file://{repository}", "version": "1.0.0"})
        assert older.status_code == 201, older.text
        assert older.json()["plugin"]["version"] == "1.0.0"
        newer = http.post("/system/plugins", json={"name": "hello", "source": f"file://{repository}"})
        assert (newer.json()["status"], newer.json()["plugin"]["version"]) == ("updated", "2.0.0")
    finally:
        http.delete("/system/plugins/hello")


@pytest.mark.parametrize(
    "source",
    ["https://127.0.0.1:9/nothing/here.git", "file:///nonexistent/repo.git", "/nonexistent/bundle.zip", "-uhoh"],
)
def test_a_source_that_cannot_be_reached_is_a_clear_error(http: httpx.Client, source: str) -> None:
    response = http.post("/system/plugins", json={"source": source})

    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "source"
    assert "cannot reach" in detail["message"] or "neither" in detail["message"] or "must be" in detail["message"]


def test_a_plugin_needed_by_another_cannot_be_removed(
    http: httpx.Client, hello: dict[str, Any], plugin_key: Any, tmp_path: Path
) -> None:
    from tests.plugins.support import write_plugin

    folder = write_plugin(
        tmp_path / "fan", "fan", "from relais_plugin import Plugin\nPlugin().run()\n", toml='dependencies = ["hello"]\n'
    )
    assert upload(http, packed(folder, plugin_key)).status_code == 201
    try:
        refused = http.delete("/plugins/hello")
        assert refused.status_code == 400 and "needed by fan" in refused.json()["detail"]
    finally:
        assert http.delete("/plugins/fan").status_code == 204


def test_enable_needs_the_dependencies(http: httpx.Client, plugin_key: Any, tmp_path: Path) -> None:
    from tests.plugins.support import write_plugin

    folder = write_plugin(
        tmp_path / "lonely",
        "lonely",
        "from relais_plugin import Plugin\nPlugin().run()\n",
        toml='dependencies = ["absent"]\n',
    )
    assert upload(http, packed(folder, plugin_key)).status_code == 201
    try:
        refused = http.post("/plugins/lonely/enable")
        assert refused.status_code == 400 and "needs absent" in refused.json()["detail"]
    finally:
        http.delete("/plugins/lonely")


@pytest.mark.slow
def test_the_local_assistant_s_cookie_flow_needs_the_csrf_token(stack: LiveStack, hello_bundle: bytes) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=120) as browser:
        session = browser.post("/auth/login", json={"user": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        csrf = {"X-CSRF-Token": session["csrf_token"]}
        assert browser.cookies.get("access_token")

        assert upload(browser, hello_bundle).status_code == 403
        assert upload(browser, hello_bundle, **csrf).status_code == 201
        try:
            assert browser.get("/plugins").json()["plugins"][0]["name"] == "hello"
            refused = browser.post("/plugins/hello/enable")
            assert refused.status_code == 403 and refused.json()["code"] == "CSRF_ERROR"
            for action, state in (("enable", "running"), ("stop", "stopped"), ("start", "running"), ("reload", None)):
                response = browser.post(f"/plugins/hello/{action}", headers=csrf)
                assert response.status_code == 200, response.text
                assert state is None or response.json()["state"] == state
            assert browser.post("/plugins/hello/disable", headers=csrf).json()["state"] == "disabled"
            assert browser.delete("/plugins/hello").status_code == 403
        finally:
            assert browser.delete("/plugins/hello", headers=csrf).status_code == 204


def test_a_plain_user_is_refused_everywhere(http: httpx.Client, hello: dict[str, Any]) -> None:
    user = new_account(http)

    for method, path in PLUGIN_ROUTES:
        kwargs: dict[str, Any] = {"json": {"source": "/x"}} if path == "/system/plugins" and method == "POST" else {}
        if path == "/plugins/upload":
            kwargs = {"files": {"file": ("x.zip", b"PK")}}
        response = http.request(method, path, headers=user.bearer, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
    # The plugin's own routes follow their own access rules: any signed-in user here.
    assert http.get("/hello/greet/Ann", headers=user.bearer).status_code == 200
    assert http.get("/system/plugins/hello", headers=ADMIN).json()["state"] == "running"


def test_without_credentials_every_route_is_401(stack: LiveStack, hello: dict[str, Any]) -> None:
    with httpx.Client(base_url=stack.base_url) as anonymous:
        for method, path in [*PLUGIN_ROUTES, ("GET", "/hello/greet/Ann")]:
            assert anonymous.request(method, path).status_code == 401, (method, path)


def test_openapi_lists_the_plugin_routes_while_loaded(http: httpx.Client, hello_bundle: bytes) -> None:
    from tests.plugins.support import openapi_paths

    assert upload(http, hello_bundle).status_code == 201
    assert "/hello/greet/{name}" not in openapi_paths(http)  # installed, not running
    http.post("/plugins/hello/enable")
    wait_until(lambda: "/hello/greet/{name}" in openapi_paths(http))
    operation = openapi_paths(http)["/hello/greet/{name}"]["get"]
    assert operation["summary"] == "A greeting for `name`." and operation["tags"] == ["Hello"]
    http.post("/plugins/hello/stop")
    wait_until(lambda: "/hello/greet/{name}" not in openapi_paths(http))
    assert http.get("/hello/greet/Ann").status_code == 404
    http.delete("/plugins/hello")
