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
import json
import logging
import math
import os
import platform
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

NAME = "health"
READY_TIMEOUT = 90.0  # seconds a server child may take to import, migrate and bind
STOP_TIMEOUT = 20.0  # seconds it may take to shut down once asked
CALL_TIMEOUT = 30.0  # seconds any single request may take
TARGETS = ("plain", "bridge", "grpc")
LABELS = {
    "plain": "plain FastAPI (uvicorn)",
    "bridge": "Relais bridge (uvicorn -> gRPC)",
    "grpc": "direct gRPC (grpc.aio)",
}


# ── Server side: runs in the child processes ────────────────────────────────────────────────


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """The pragmas server.storage.engine sets on each new SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def plain_app(data_dir: Path) -> FastAPI:
    """The baseline: one FastAPI route doing the work of Relais' health, written by hand.

    Per request: `SELECT 1` through a SQLAlchemy async engine (aiosqlite, its own file, the same
    engine options as Relais), `shutil.disk_usage` of the data directory, and a JSON body of the
    same shape as the bridge's GET /health. The version is read once at start-up.
    """
    from fastapi import FastAPI
    from sqlalchemy import event, text
    from sqlalchemy.ext.asyncio import create_async_engine

    data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{data_dir / 'plain.db'}", connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    started = time.monotonic()
    try:
        version = metadata.version("relais")
    except metadata.PackageNotFoundError:
        version = "0.0.0+unknown"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(title="plain", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

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
        usage = shutil.disk_usage(data_dir)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {
            "status": "healthy" if database_ok else "unhealthy",
            "version": version,
            "time": now,
            "timestamp": now,
            "uptime": int(time.monotonic() - started),
            "gpu": {"available": False, "count": 0, "names": []},
            "plugins_count": 0,
            "tools_count": 0,
            "db_ok": database_ok,
            "faiss_ok": False,
            "ollama": "not_configured",
            "chromadb": "not_configured",
            "checks": {"database": database_ok, "redis": None, "disk": True},
            "disk": {"path": str(data_dir), "free_bytes": usage.free, "total_bytes": usage.total},
            "latency": {"database_ms": database_ms, "redis_ms": None},
            "database_engine": "sqlite",
        }

    return app


async def _start_uvicorn(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve `app` on an ephemeral loopback port with the options `relais serve` uses."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the child handles its own signals
            yield

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP,
    # and accepted sockets inherit the listener's. With proto 0, uvicorn's separate header and body
    # writes meet Nagle + delayed ACK and every keep-alive response waits ~40 ms.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    server = Server(
        uvicorn.Config(app, log_config=None, lifespan="on", server_header=False, timeout_graceful_shutdown=5)
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    deadline = time.monotonic() + READY_TIMEOUT
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before it started")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.01)
    return server, task, port


async def _serve(kind: str, data_dir: Path) -> None:
    """Start one side, print its ports as a JSON line, run until SIGTERM/SIGINT or stdin closes."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:  # the parent closes our stdin to stop us, or dies
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    grpc_server = None
    grpc_port = None
    if kind == "relais":
        from bridge.app import create_app
        from server.app import RelaisServer
        from server.config import Settings

        settings = Settings(host="127.0.0.1", grpc_port=0, http_port=0, data_dir=data_dir, min_free_disk_bytes=0)
        grpc_server = RelaisServer(settings)
        grpc_port = await grpc_server.start()
        app = create_app(upstream=f"127.0.0.1:{grpc_port}")
    elif kind == "plain":
        app = plain_app(data_dir)
    else:
        raise SystemExit(f"unknown server kind {kind!r}")

    http, http_task, http_port = await _start_uvicorn(app)
    print(json.dumps({"pid": os.getpid(), "grpc_port": grpc_port, "http_port": http_port}), flush=True)
    stopping = loop.create_task(stop.wait())
    try:
        await asyncio.wait([stopping, http_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        http.should_exit = True
        await asyncio.gather(http_task, return_exceptions=True)
        stopping.cancel()
        if grpc_server is not None:
            await grpc_server.stop(grace=1)


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.health serve relais|plain DATA_DIR`."""
    if len(argv) != 3 or argv[0] != "serve":
        raise SystemExit("usage: python -m bench.health serve relais|plain DATA_DIR")
    # Warnings and errors still reach stderr; per-request INFO logs (access logs) do not.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.disable(logging.INFO)
    asyncio.run(_serve(argv[1], Path(argv[2])))


# ── Client side: this process ───────────────────────────────────────────────────────────────


class ServerProcess:
    """A server child: started, read for its ports, measured for CPU, stopped (bounded waits)."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        from bench import REPO_ROOT

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.health", "serve", kind, str(data_dir)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ports = self._read_ready()
        import psutil

        self._ps = psutil.Process(self.process.pid)

    def _read_ready(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise TimeoutError(f"{self.kind} server not ready after {READY_TIMEOUT:.0f}s")
                if selector.select(left):
                    line = self.process.stdout.readline()
                    if not line:
                        code = self.process.wait(STOP_TIMEOUT)
                        raise RuntimeError(f"{self.kind} server exited ({code}) before it was ready")
                    with contextlib.suppress(ValueError):
                        ready: dict[str, Any] = json.loads(line)
                        return ready

    def cpu_seconds(self) -> float:
        """User + system CPU time of the child so far, all its threads included."""
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass(frozen=True, slots=True)
class Result:
    target: str
    label: str
    concurrency: int
    requests: int
    seconds: float
    requests_per_second: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms_per_request: float
    client_cpu_ms_per_request: float


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


Call = Callable[[int], Awaitable[None]]  # one request, sent by worker N


async def drive(call: Call, requests: int, concurrency: int) -> tuple[list[float], float]:
    """Send exactly `requests` calls from `concurrency` workers (one in flight each);
    per-call latencies (s) and the wall time of the whole batch."""
    remaining = requests
    latencies: list[float] = []

    async def worker(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(min(concurrency, requests))))
    return latencies, time.perf_counter() - started


@contextlib.asynccontextmanager
async def http_caller(base_url: str, concurrency: int) -> AsyncIterator[tuple[Call, Any]]:
    """`concurrency` keep-alive HTTP/1.1 connections: one httpx.AsyncClient limited to one connection
    per worker. (One shared client with max_connections=concurrency gives the same connections, but
    httpcore's pool bookkeeping then costs ~2.5x the client CPU per request at 16 and the load
    generator, not the server, becomes the bottleneck.)"""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=CALL_TIMEOUT, http2=False)
            )
            for _ in range(concurrency)
        ]

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
        await asyncio.wait_for(channel.channel_ready(), CALL_TIMEOUT)
        stub = system_pb2_grpc.SystemServiceStub(channel)
        request = system_pb2.GetHealthRequest()

        async def call(worker: int) -> None:
            await stub.GetHealth(request, timeout=CALL_TIMEOUT)

        async def sample() -> Any:
            return MessageToDict(await stub.GetHealth(request, timeout=CALL_TIMEOUT), preserving_proto_field_name=True)

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
        caller = http_caller(f"http://127.0.0.1:{server.ports['http_port']}", concurrency)
    async with caller as (call, sample):
        _check_sample(target, await sample())
        # Warm-up at the measured concurrency, so every connection is open before timing starts.
        await drive(call, max(warmup, concurrency), concurrency)
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        latencies, seconds = await drive(call, requests, concurrency)
        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    latencies.sort()
    ms = [value * 1000 for value in latencies]
    return Result(
        target=target,
        label=LABELS[target],
        concurrency=concurrency,
        requests=requests,
        seconds=round(seconds, 4),
        requests_per_second=round(requests / seconds, 1),
        mean_ms=round(sum(ms) / len(ms), 3),
        p50_ms=round(percentile(ms, 50), 3),
        p90_ms=round(percentile(ms, 90), 3),
        p99_ms=round(percentile(ms, 99), 3),
        max_ms=round(ms[-1], 3),
        server_cpu_ms_per_request=round(server_cpu * 1000 / requests, 3),
        client_cpu_ms_per_request=round(client_cpu * 1000 / requests, 3),
    )


async def run_all(args: argparse.Namespace, servers: dict[str, ServerProcess]) -> list[Result]:
    results = []
    for concurrency in args.concurrency:
        for target in TARGETS:
            server = servers["plain" if target == "plain" else "relais"]
            result = await measure(target, server, concurrency, args.requests, args.warmup)
            print(
                f"  {target:<6} c={concurrency:<3} {result.requests_per_second:>8.1f} req/s  "
                f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    """Each target against the plain FastAPI baseline at the same concurrency."""
    by_key = {(result.target, result.concurrency): result for result in results}
    rows = []
    for result in results:
        base = by_key.get(("plain", result.concurrency))
        if base is None or result.target == "plain":
            continue
        rows.append(
            {
                "target": result.target,
                "concurrency": result.concurrency,
                "throughput_ratio": round(result.requests_per_second / base.requests_per_second, 3),
                "p50_ratio": round(result.p50_ms / base.p50_ms, 3),
                "p99_ratio": round(result.p99_ms / base.p99_ms, 3),
                "server_cpu_ratio": (
                    round(result.server_cpu_ms_per_request / base.server_cpu_ms_per_request, 3)
                    if base.server_cpu_ms_per_request
                    else None
                ),
            }
        )
    return rows


def markdown(results: list[Result], ratio_rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target | conc. | req/s | p50 ms | p99 ms | server CPU ms/req | client CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.concurrency} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.server_cpu_ms_per_request:.3f} | "
            f"{r.client_cpu_ms_per_request:.3f} |"
        )
    lines += [
        "",
        "Relative to plain FastAPI at the same concurrency "
        "(throughput: higher is better; latency and CPU: lower is better):",
        "",
        "| ratio | conc. | throughput | p50 | p99 | server CPU/req |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in ratio_rows:
        cpu = "n/a" if row["server_cpu_ratio"] is None else f"{row['server_cpu_ratio']:.2f}x"
        lines.append(
            f"| {row['target']} / plain | {row['concurrency']} | {row['throughput_ratio']:.2f}x | "
            f"{row['p50_ratio']:.2f}x | {row['p99_ratio']:.2f}x | {cpu} |"
        )
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "relais",
        "grpcio",
        "protobuf",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "sqlalchemy",
        "aiosqlite",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench health`."""
    from bench import RESULTS_DIR

    default_output = RESULTS_DIR / (f"{NAME}.quick.json" if args.quick else f"{NAME}.json")
    output = Path(args.output) if args.output else default_output
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# health: {args.requests} requests per scenario after {args.warmup} warm-up, concurrency "
        f"{', '.join(map(str, args.concurrency))}{quick_note}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch:
        try:
            servers["relais"] = ServerProcess("relais", Path(scratch) / "relais")
            servers["plain"] = ServerProcess("plain", Path(scratch) / "plain")
            results = asyncio.run(run_all(args, servers))
        finally:
            for server in servers.values():
                server.stop()
    ratio_rows = ratios(results)
    table = markdown(results, ratio_rows)
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
            "versions": _versions(),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "ratios_vs_plain": ratio_rows,
    }
    write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
