"""Two `relais serve` processes sharing PostgreSQL and Redis: a plugin installed and enabled on
one runs on the other too (its own process there), and a removal on either reaches both."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.plugins.signing import public_key_text
from tests.plugins.support import openapi_paths, upload, wait_until
from tests.support.replicas import two_replicas

ADMIN = ("plugins-admin@relais.test", "plugins-admin-pass-1234")


@pytest.mark.slow
def test_two_replicas_converge_on_install_and_removal(
    tmp_path: Path, postgres_schema_url: str, plugin_key: Ed25519PrivateKey, hello_bundle: bytes, runtime_dir: Path
) -> None:
    env = {
        "RELAIS_ADMIN_EMAIL": ADMIN[0],
        "RELAIS_ADMIN_PASSWORD": ADMIN[1],
        "RELAIS_PLUGINS_TRUSTED_KEYS": public_key_text(plugin_key.public_key()),
        "RELAIS_PLUGINS_RUNTIME_DIR": str(runtime_dir),
    }
    with two_replicas(tmp_path, postgres_schema_url, **env) as (first, second):
        token = httpx.post(f"{first}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(base_url=first, headers=bearer, timeout=120) as one,
            httpx.Client(base_url=second, headers=bearer, timeout=120) as two,
        ):
            assert upload(one, hello_bundle).status_code == 201
            assert one.post("/plugins/hello/enable").json()["state"] == "running"

            wait_until(lambda: two.get("/system/plugins/hello").json().get("state") == "running", 60)
            wait_until(lambda: "/hello/greet/{name}" in openapi_paths(two))
            assert two.get("/hello/greet/Ann").json()["message"] == "Hello, Ann!"
            assert (
                two.get("/admin/plugins/hello/stats").json()["pid"]
                != one.get("/admin/plugins/hello/stats").json()["pid"]
            )
            assert (tmp_path / "1" / "plugins" / "bundles" / "hello").is_dir()

            assert two.delete("/plugins/hello").status_code == 204

            wait_until(lambda: one.get("/system/plugins/hello").status_code == 404, 60)
            wait_until(lambda: "/hello/greet/{name}" not in openapi_paths(one))
            assert one.get("/hello/greet/Ann").status_code == 404
            wait_until(lambda: not (tmp_path / "0" / "plugins" / "bundles" / "hello").exists())


@pytest.mark.slow
def test_a_bridge_running_apart_learns_the_plugin_routes_over_grpc(tmp_path: Path, runtime_dir: Path) -> None:
    """`relais serve --only grpc` runs the shipped hello plugin; `--only bridge --upstream` (no
    server code, no plugin files) serves its route from what WatchPluginRoutes tells it."""
    from server.ports import unused_port
    from tests.test_cli import relais, wait_http

    grpc_port, http_port = unused_port(), unused_port()
    env = {
        "RELAIS_ADMIN_EMAIL": ADMIN[0],
        "RELAIS_ADMIN_PASSWORD": ADMIN[1],
        "RELAIS_PLUGINS_SHIPPED": '["hello"]',
        "RELAIS_PLUGINS_RUNTIME_DIR": str(runtime_dir),
        "RELAIS_LLM_PRELOAD": "false",
        "RELAIS_RETRIEVAL_PRELOAD": "false",
    }
    server_args = ["serve", "--only", "grpc", "--grpc-port", str(grpc_port), "--data-dir", str(tmp_path / "data")]
    bridge_args = ["serve", "--only", "bridge", "--upstream", f"127.0.0.1:{grpc_port}", "--http-port", str(http_port)]
    with relais(*server_args, env=env) as server, relais(*bridge_args, env=env, cwd=tmp_path) as bridge:
        base = f"http://127.0.0.1:{http_port}"
        wait_http(f"{base}/health", bridge, until=200)
        assert server.poll() is None
        token = httpx.post(f"{base}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            wait_until(lambda: "/hello/greet/{name}" in openapi_paths(http), 90)
            assert http.get("/hello/greet/Ann").json()["message"] == "Hello, Ann!"
            assert http.post("/plugins/hello/stop").json()["state"] == "stopped"
            wait_until(lambda: http.get("/hello/greet/Ann").status_code == 404)
