"""GET /health three ways: direct gRPC, through the Relais bridge, and a plain FastAPI app.

    .venv/bin/python -m bench health            # 2000 requests per scenario after 200 warm-up
    .venv/bin/python -m bench health --quick    # smoke run

The servers run in child processes (`python -m bench.health serve relais|plain DATA_DIR`), the
load generator in this one, so that client and servers do not share a GIL:

    relais child   grpc.aio RelaisServer + the real bridge under uvicorn, one asyncio loop (as `relais serve`)
    plain child    a FastAPI app doing the same health work under uvicorn, configured the same way
    this process   httpx.AsyncClient for the HTTP targets, a grpc.aio channel for gRPC
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from bench.common import Call, Result, ServerProcess

if TYPE_CHECKING:
    from fastapi import FastAPI

NAME = "health"
TARGETS = ("plain", "bridge", "grpc")
LABELS = {
    "plain": "plain FastAPI (uvicorn)",
    "bridge": "Relais bridge (uvicorn -> gRPC)",
    "grpc": "direct gRPC (grpc.aio)",
}


# ── Server side: runs in the child processes ────────────────────────────────────────────────


def plain_app(data_dir: Path) -> FastAPI:
    """The baseline: one FastAPI route doing the work of Relais' health, written by hand.

    Per request, as Relais' health does with its default stack: `SELECT 1` through a SQLAlchemy
    async engine (aiosqlite, its own file, the same engine options as Relais), the vector
    store's probe (`MilvusClient.has_collection` on a worker thread, against a Milvus Lite
    server in a child process, as Relais runs its own), the local model's (its weights file is
    there), `shutil.disk_usage` of the data directory, and a JSON body of the same shape as the
    bridge's GET /health. The version is read once at start-up.
    """
    from concurrent.futures import ThreadPoolExecutor

    from fastapi import FastAPI
    from pymilvus import MilvusClient
    from sqlalchemy import text

    from server.retrieval.lite import MilvusLiteProcess
    from server.storage import create_database

    data_dir.mkdir(parents=True, exist_ok=True)
    # The engine exactly as Relais builds it (pool, pragmas), so only the serving code differs.
    engine = create_database(f"sqlite+aiosqlite:///{data_dir / 'plain.db'}").engine
    weights = data_dir / "model.gguf"
    weights.write_bytes(b"GGUF")
    milvus_lite = MilvusLiteProcess(data_dir / "milvus")
    milvus_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plain-milvus")
    milvus: list[MilvusClient] = []
    started = time.monotonic()
    try:
        version = metadata.version("relais")
    except metadata.PackageNotFoundError:
        version = "0.0.0+unknown"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        uri = await milvus_lite.start()
        milvus.append(await asyncio.get_running_loop().run_in_executor(milvus_thread, MilvusClient, uri))
        yield
        await asyncio.get_running_loop().run_in_executor(milvus_thread, milvus[0].close)
        milvus_thread.shutdown()
        await milvus_lite.stop()
        await engine.dispose()

    app = FastAPI(title="plain", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    async def vector_store_ok() -> bool:
        try:
            await asyncio.get_running_loop().run_in_executor(milvus_thread, milvus[0].has_collection, "passages")
        except Exception:
            return False
        return True

    @app.get("/health")
    async def health() -> dict[str, Any]:
        probe_started = time.perf_counter()
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            database_ok = True
        except Exception:
            database_ok = False
        database_ms = (time.perf_counter() - probe_started) * 1000
        store_ok = await vector_store_ok()
        model_ok = weights.is_file()
        usage = shutil.disk_usage(data_dir)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {
            "status": "healthy" if database_ok and store_ok and model_ok else "unhealthy",
            "version": version,
            "time": now,
            "timestamp": now,
            "uptime": int(time.monotonic() - started),
            "gpu": {"available": False, "count": 0, "names": []},
            "plugins_count": 0,
            "tools_count": 0,
            "db_ok": database_ok,
            "faiss_ok": store_ok,
            "ollama": "connected" if model_ok else "disconnected",
            "chromadb": "connected" if store_ok else "disconnected",
            "checks": {"database": database_ok, "redis": None, "disk": True},
            "disk": {"path": str(data_dir), "free_bytes": usage.free, "total_bytes": usage.total},
            "latency": {"database_ms": database_ms, "redis_ms": None},
            "database_engine": "sqlite",
        }

    return app


async def serve_relais(data_dir: Path) -> common.Served:
    return await common.start_relais(data_dir)


async def serve_plain(data_dir: Path) -> common.Served:
    return common.Served(app=plain_app(data_dir))


SERVERS = {"relais": serve_relais, "plain": serve_plain}


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.health serve relais|plain DATA_DIR`."""
    common.serve_main(argv, "bench.health", SERVERS)


# ── Client side: this process ───────────────────────────────────────────────────────────────


@contextlib.asynccontextmanager
async def http_caller(base_url: str, concurrency: int) -> AsyncIterator[tuple[Call, Any]]:
    """One keep-alive HTTP/1.1 connection per worker (see common.http_clients)."""
    async with common.http_clients(base_url, concurrency) as clients:

        async def call(worker: int) -> None:
            response = await clients[worker].get("/health")
            if response.status_code != 200:
                raise RuntimeError(f"GET {base_url}/health: {response.status_code} {response.text[:200]}")

        async def sample() -> Any:
            response = await clients[0].get("/health")
            response.raise_for_status()
            return response.json()

        yield call, sample


@contextlib.asynccontextmanager
async def grpc_caller(target: str) -> AsyncIterator[tuple[Call, Any]]:
    """One grpc.aio channel (one HTTP/2 connection), every worker's calls multiplexed on it,
    as the bridge's own upstream channel does."""
    import grpc
    from google.protobuf.json_format import MessageToDict
    from relais.v1 import system_pb2, system_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), common.CALL_TIMEOUT)
        stub = system_pb2_grpc.SystemServiceStub(channel)
        request = system_pb2.GetHealthRequest()

        async def call(worker: int) -> None:
            await stub.GetHealth(request, timeout=common.CALL_TIMEOUT)

        async def sample() -> Any:
            return MessageToDict(
                await stub.GetHealth(request, timeout=common.CALL_TIMEOUT), preserving_proto_field_name=True
            )

        yield call, sample


def _check_sample(target: str, body: Any) -> None:
    """Every target must answer a healthy report of the same shape before it is timed."""
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("healthy", "HEALTH_STATUS_HEALTHY"):
        raise RuntimeError(f"{target}: unexpected health answer {body!r}")
    missing = {"version", "disk", "checks"} - set(body)
    if missing:
        raise RuntimeError(f"{target}: health answer lacks {sorted(missing)}: {body!r}")


async def measure(target: str, server: ServerProcess, concurrency: int, requests: int, warmup: int) -> Result:
    if target == "grpc":
        caller = grpc_caller(f"127.0.0.1:{server.ports['grpc_port']}")
    else:
        caller = http_caller(server.base_url, concurrency)
    async with caller as (call, sample):
        _check_sample(target, await sample())
        return await common.measure_call(
            call,
            target=target,
            label=LABELS[target],
            server=server,
            concurrency=concurrency,
            requests=requests,
            warmup=warmup,
        )


async def run_all(args: argparse.Namespace, servers: dict[str, ServerProcess]) -> list[Result]:
    results = []
    for concurrency in args.concurrency:
        for target in TARGETS:
            server = servers["plain" if target == "plain" else "relais"]
            result = await measure(target, server, concurrency, args.requests, args.warmup)
            common.progress(target, result)
            results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench health`."""
    args = common.resolve_defaults(args, requests=(2000, 200), warmup=(200, 20), concurrency=[1, 16])
    output = common.output_path(args, NAME)
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# health: {args.requests} requests per scenario after {args.warmup} warm-up, concurrency "
        f"{', '.join(map(str, args.concurrency))}{quick_note}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch,
        common.server_processes("bench.health", Path(scratch), ("relais", "plain")) as servers,
    ):
        results = asyncio.run(run_all(args, servers))
    ratio_rows = common.ratios(results)
    table = common.markdown(results, ratio_rows)
    print()
    print(
        f"## GET /health: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.requests} requests/scenario, servers in child processes"
    )
    print()
    print(table)
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "servers": "child processes (relais: gRPC server + bridge on one asyncio loop; plain: FastAPI), "
            "load generator in the parent process",
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "versions": common.versions(),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "ratios_vs_plain": ratio_rows,
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
