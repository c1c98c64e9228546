"""`relais serve` as a user runs it: real processes, real ports, settings precedence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from server.config import load_settings
from server.ports import unused_port

RELAIS = Path(sys.executable).parent / "relais"


@contextmanager
def relais(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [str(RELAIS), *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()


def wait_http(
    url: str, process: subprocess.Popen[str], timeout: float = 120, until: int | None = None
) -> httpx.Response:
    """Poll `url` until it answers (with status `until`, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"relais exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            response = httpx.get(url, timeout=2)
        except httpx.TransportError:
            response = None
        if response is not None and until in (None, response.status_code):
            return response
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered" + (f" {until}" if until else ""))


def test_serve_runs_both_ports_from_a_fresh_directory_and_stops_cleanly(tmp_path: Path) -> None:
    http_port, grpc_port = unused_port(), unused_port()
    with relais("serve", "--http-port", str(http_port), "--grpc-port", str(grpc_port), cwd=tmp_path) as process:
        health = wait_http(f"http://127.0.0.1:{http_port}/health", process)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        home = httpx.get(f"http://127.0.0.1:{http_port}/")
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)

    assert health.status_code == 200 and health.json()["db_ok"] is True
    assert "relais.v1.SystemService" in services
    assert home.status_code == 200 and "/docs" in home.text
    assert (tmp_path / "data" / "relais.db").exists()  # the default ./data
    assert code == 0


def test_grpc_and_bridge_run_as_separate_processes(tmp_path: Path) -> None:
    http_port, grpc_port = unused_port(), unused_port()
    env = {"RELAIS_DATA_DIR": str(tmp_path / "data")}
    with (
        relais("serve", "--only", "grpc", "--grpc-port", str(grpc_port), env=env),
        relais(
            "serve", "--only", "bridge", "--upstream", f"127.0.0.1:{grpc_port}", "--http-port", str(http_port)
        ) as bridge,
    ):
        # The bridge may come up first: it answers 503 until the gRPC server listens, then recovers.
        response = wait_http(f"http://127.0.0.1:{http_port}/health", bridge, until=200)

    # The bridge answers with what the gRPC process reports (the path itself is for administrators).
    assert response.json()["db_ok"] is True
    assert (tmp_path / "data" / "relais.db").exists()


def test_bridge_answers_503_while_its_upstream_is_down() -> None:
    http_port = unused_port()
    with relais(
        "serve", "--only", "bridge", "--upstream", f"127.0.0.1:{unused_port()}", "--http-port", str(http_port)
    ) as bridge:
        wait_http(f"http://127.0.0.1:{http_port}/openapi.json", bridge)
        response = httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=30)

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert "127.0.0.1" not in response.text  # no internal addresses leak


def test_bridge_only_without_upstream_is_a_usage_error() -> None:
    result = subprocess.run([str(RELAIS), "serve", "--only", "bridge"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--upstream" in result.stdout + result.stderr


def test_settings_precedence_flags_over_environment_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "relais.toml"
    config.write_text('http_port = 9001\ngrpc_port = 9002\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("RELAIS_GRPC_PORT", "9102")
    monkeypatch.delenv("RELAIS_CONFIG", raising=False)

    settings = load_settings(config, grpc_port=None, log_level="WARNING")

    assert settings.http_port == 9001  # file
    assert settings.grpc_port == 9102  # environment beats file
    assert settings.log_level == "WARNING"  # flag beats both
    monkeypatch.delenv("RELAIS_CONFIG", raising=False)


def test_invalid_setting_is_reported() -> None:
    result = subprocess.run([str(RELAIS), "serve", "--http-port", "99999"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "http_port" in result.stdout + result.stderr
