"""GET /health and GET /manager/health: measured values, over gRPC and HTTP."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from relais.v1 import system_pb2, system_pb2_grpc

from tests.conftest import POSTGRES_URL, stack_settings
from tests.support.live import LiveStack


def test_health_over_http_reports_measured_values(http: httpx.Client, stack: LiveStack) -> None:
    response = http.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["db_ok"] is True and body["checks"]["database"] is True
    assert body["database_engine"] == stack.server.database.dialect
    assert body["latency"]["database_ms"] > 0
    usage = shutil.disk_usage(stack.settings.data_dir)
    assert abs(body["disk"]["free_bytes"] - usage.free) < 512 * 1024 * 1024
    assert body["disk"]["total_bytes"] == usage.total
    # Not configured in this stack: a boolean as the document shows, the real state beside it.
    assert body["checks"]["redis"] is True
    assert body["redis"] == {"state": "not_configured", "backend": "redis", "model": ""}
    assert body["gpu"] == {
        "available": bool(shutil.which("nvidia-smi")) and body["gpu"]["count"] > 0,
        "count": body["gpu"]["count"],
        "names": body["gpu"]["names"],
    }
    measured = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - measured) < timedelta(seconds=30)
    assert body["time"] == body["timestamp"]
    assert isinstance(body["uptime"], int) and body["uptime"] >= 0
    # The packaged local model is loadable; Milvus Lite answers (its file under the data dir).
    assert body["ollama"] == "connected" and body["chromadb"] == "connected" and body["faiss_ok"] is True
    # The ten built-in tools that are on by default (web_fetch and execute_command are off).
    assert body["plugins_count"] == 0 and body["tools_count"] == 10
    assert body["tool_sources"] == {"builtin": "connected"}
    # The seeds' names above; the real ones beside them.
    assert body["vector_store"] == {"state": "connected", "backend": "milvus-lite", "model": ""}
    assert body["inference"] == {"state": "connected", "backend": "llama.cpp", "model": "gemma3-270m"}


def test_only_administrators_see_where_the_data_lives(http: httpx.Client, stack: LiveStack) -> None:
    from tests.identity.helpers import admin, new_account

    anonymous = http.get("/health").json()["disk"]
    user = http.get("/health", headers=new_account(http).bearer).json()["disk"]
    boss = http.get("/health", headers=admin(http).bearer).json()["disk"]

    assert anonymous["path"] == "" and user["path"] == "" and anonymous["free_bytes"] > 0
    assert boss["path"] == str(stack.settings.data_dir)
    assert str(stack.settings.data_dir) not in http.get("/health").text


def test_health_checks_arriving_together_share_one_probe_per_dependency(stack: LiveStack) -> None:
    assert stack.server.system is not None
    system = stack.server.system.service
    real = system.registries.dependencies["vector_store"]
    calls = 0

    async def counted() -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return await real()

    async def burst(size: int) -> list[str]:
        reports = await asyncio.gather(*(system.health() for _ in range(size)))
        return [report.vector_store.value for report in reports]

    system.registries.dependencies["vector_store"] = counted
    try:
        assert stack.run(burst(8)) == ["connected"] * 8
        assert calls == 1
        # Nothing is kept once the probe is over: the next check probes again.
        assert stack.run(burst(1)) == ["connected"]
        assert calls == 2
    finally:
        system.registries.dependencies["vector_store"] = real


def test_health_over_grpc_matches_the_contract(channel: grpc.Channel) -> None:
    stub = system_pb2_grpc.SystemServiceStub(channel)

    reply = stub.GetHealth(system_pb2.GetHealthRequest())

    assert reply.status == system_pb2.HEALTH_STATUS_HEALTHY
    assert reply.db_ok and reply.checks.database
    assert reply.checks.redis and reply.redis.state == system_pb2.DEPENDENCY_STATE_NOT_CONFIGURED
    assert reply.disk.path == ""


def test_health_reports_unhealthy_when_the_database_goes_away(tmp_path: Path) -> None:
    # A real database, dropped under the running server.
    name = f"relais_gone_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    live = LiveStack(stack_settings(tmp_path, url)).start()
    try:
        assert httpx.get(f"{live.base_url}/health", timeout=30).json()["db_ok"] is True
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = httpx.get(f"{live.base_url}/health", timeout=30)
    finally:
        live.stop()

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["db_ok"] is False and body["checks"]["database"] is False


def test_manager_health_requires_authentication(http: httpx.Client) -> None:
    response = http.get("/manager/health")

    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_ERROR"


def test_manager_health_reports_the_scheduler(http: httpx.Client) -> None:
    response = http.get("/manager/health", headers={"Authorization": "Bearer user-token"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy" and body["running"] is True
    assert body["tasks_count"] == len(body["tasks"]) >= 1
    disk_task = next(task for task in body["tasks"] if task["name"] == "disk-usage")
    assert disk_task["runs"] >= 1 and disk_task["failures"] == 0
    assert disk_task["last_run"] is not None and disk_task["next_run"] > disk_task["last_run"]


@pytest.mark.parametrize("redis_url, expected", [("redis://127.0.0.1:6379/0", True), ("redis://127.0.0.1:1/0", False)])
def test_health_probes_redis_for_real(redis_url: str, expected: bool, tmp_path: Path, database_url: str) -> None:
    live = LiveStack(stack_settings(tmp_path, database_url, redis_url=redis_url, retrieval_preload=True)).start()
    try:
        body = httpx.get(f"{live.base_url}/health", timeout=30).json()
    finally:
        live.stop()

    assert body["checks"]["redis"] is expected
    assert body["redis"]["state"] == ("connected" if expected else "disconnected")
    assert body["status"] == ("healthy" if expected else "degraded")
    assert (body["latency"]["redis_ms"] is not None) is expected
