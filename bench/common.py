"""Machinery shared by the benchmarks: server child processes, the load generator, statistics,
tables and JSON.

A benchmark module starts its servers as child processes (`python -m bench.<name> serve KIND
DATA_DIR`, whose `__main__` calls `serve_main` with the factories of its server kinds), drives
them from the parent with `drive`/`measure_call`, and prints `markdown` tables.
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
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    import uvicorn

READY_TIMEOUT = 90.0  # seconds a server child may take to import, migrate and bind
STOP_TIMEOUT = 20.0  # seconds it may take to shut down once asked
CALL_TIMEOUT = 30.0  # seconds any single request may take

# The Relais child's rate limits: high enough never to refuse a benchmark request (the limiter
# still counts every call, so its cost is measured). The defaults refuse anonymous callers after
# 60 requests a minute, GET /health included.
UNLIMITED = "1000000/minute"
RELAIS_RATE_LIMITS = {
    "rate_limit_anonymous": UNLIMITED,
    "rate_limit_user": UNLIMITED,
    "rate_limit_admin": UNLIMITED,
    "rate_limit_login": UNLIMITED,
}


def resolve_defaults(
    args: argparse.Namespace,
    *,
    requests: tuple[int, int],
    warmup: tuple[int, int],
    concurrency: list[int],
) -> argparse.Namespace:
    """A copy of `args` with this benchmark's defaults (full, quick) where no option was given."""
    resolved = argparse.Namespace(**vars(args))
    if resolved.requests is None:
        resolved.requests = requests[1] if args.quick else requests[0]
    if resolved.warmup is None:
        resolved.warmup = warmup[1] if args.quick else warmup[0]
    if resolved.concurrency is None:
        resolved.concurrency = list(concurrency)
    return resolved


def output_path(args: argparse.Namespace, name: str) -> Path:
    """--output, else bench/results/<name>.json (<name>.quick.json for a --quick run)."""
    from bench import RESULTS_DIR

    if args.output:
        return Path(args.output)
    return RESULTS_DIR / (f"{name}.quick.json" if args.quick else f"{name}.json")


# ── Server side: runs in the child processes ────────────────────────────────────────────────


@dataclass(slots=True)
class Served:
    """What a server child runs: an ASGI app under uvicorn, and optionally a gRPC server."""

    app: Any
    grpc_port: int | None = None
    close: Callable[[], Awaitable[None]] | None = None
    # Called once the server is up (Relais: what `relais serve` does then).
    started: Callable[[], None] | None = None


ServerFactory = Callable[[Path], Awaitable[Served]]


async def start_relais(data_dir: Path, **settings: Any) -> Served:
    """Relais as `relais serve` runs it: the grpc.aio RelaisServer and the real bridge, on this
    loop. `settings` are extra server.config.Settings fields (rate limits are lifted by default)."""
    from cli.serve import bridge_app
    from server.app import RelaisServer
    from server.config import Settings
    from server.memory import settle

    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "grpc_port": 0,
        "http_port": 0,
        "data_dir": data_dir,
        "min_free_disk_bytes": 0,
        **RELAIS_RATE_LIMITS,
        # No shipped plugin processes starting while a benchmark measures (bench.plugins asks for hello).
        "plugins_shipped": [],
        **settings,
    }
    config = Settings(**options)
    grpc_server = RelaisServer(config)
    grpc_port = await grpc_server.start()
    # As `relais serve` builds it: in process (the interceptors run as over the wire, no socket)
    # unless the settings say RELAIS_BRIDGE_IN_PROCESS=false.
    app = bridge_app(config, f"127.0.0.1:{grpc_port}", grpc_server)

    async def close() -> None:
        await grpc_server.stop(grace=1)

    # Once up, `relais serve` moves what start-up made out of the garbage collector's sight.
    return Served(app=app, grpc_port=grpc_port, close=close, started=settle)


async def start_uvicorn(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
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


async def _serve(factory: ServerFactory, data_dir: Path) -> None:
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

    served = await factory(data_dir)
    try:
        http, http_task, http_port = await start_uvicorn(served.app)
        if served.started is not None:
            served.started()
        print(json.dumps({"pid": os.getpid(), "grpc_port": served.grpc_port, "http_port": http_port}), flush=True)
        stopping = loop.create_task(stop.wait())
        try:
            await asyncio.wait([stopping, http_task], return_when=asyncio.FIRST_COMPLETED)
        finally:
            http.should_exit = True
            await asyncio.gather(http_task, return_exceptions=True)
            stopping.cancel()
    finally:
        if served.close is not None:
            await served.close()


def serve_main(argv: list[str], module: str, factories: Mapping[str, ServerFactory]) -> None:
    """Child entry point: `python -m MODULE serve KIND DATA_DIR`."""
    kinds = "|".join(factories)
    if len(argv) != 3 or argv[0] != "serve":
        raise SystemExit(f"usage: python -m {module} serve {kinds} DATA_DIR")
    factory = factories.get(argv[1])
    if factory is None:
        raise SystemExit(f"unknown server kind {argv[1]!r}; choose from {kinds}")
    # Warnings and errors still reach stderr; per-request INFO logs (access logs) do not.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.disable(logging.INFO)
    asyncio.run(_serve(factory, Path(argv[2])))


# ── Client side: the parent process ─────────────────────────────────────────────────────────


class ServerProcess:
    """A server child (`python -m MODULE serve KIND DATA_DIR`): started, read for its ports,
    measured for CPU, stopped (bounded waits). RELAIS_* variables of this environment are not
    passed on: the children configure themselves, so a run does not depend on the caller's shell."""

    def __init__(self, module: str, kind: str, data_dir: Path) -> None:
        from bench import REPO_ROOT

        env = {key: value for key, value in os.environ.items() if not key.startswith("RELAIS_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", kind, str(data_dir)],
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

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http_port']}"

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


@contextlib.contextmanager
def server_processes(module: str, data_root: Path, kinds: Iterable[str]) -> Iterator[dict[str, ServerProcess]]:
    """One child per kind (data under data_root/KIND), all stopped on the way out."""
    servers: dict[str, ServerProcess] = {}
    try:
        for kind in kinds:
            servers[kind] = ServerProcess(module, kind, data_root / kind)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@contextlib.asynccontextmanager
async def http_clients(
    base_url: str, concurrency: int, *, cookies: bool = True
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`concurrency` keep-alive HTTP/1.1 connections: one httpx.AsyncClient limited to one connection
    per worker. (One shared client with max_connections=concurrency gives the same connections, but
    httpcore's pool bookkeeping then costs ~2.5x the client CPU per request at 16 and the load
    generator, not the server, becomes the bottleneck.) With cookies=False the clients keep no
    cookie a response sets, so every request sends only what the benchmark gives it."""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(concurrency):
            options: dict[str, Any] = {}
            if not cookies:
                from http.cookiejar import CookieJar, DefaultCookiePolicy

                options["cookies"] = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
            client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=CALL_TIMEOUT, http2=False, **options)
            clients.append(await stack.enter_async_context(client))
        yield clients


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


async def measure_call(
    call: Call,
    *,
    target: str,
    label: str,
    server: ServerProcess,
    concurrency: int,
    requests: int,
    warmup: int,
) -> Result:
    """Warm up (at least one call per worker, so every connection is open before timing starts),
    then time `requests` calls from `concurrency` workers, with the server child's CPU and ours."""
    await drive(call, max(warmup, concurrency), concurrency)
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    latencies, seconds = await drive(call, requests, concurrency)
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    latencies.sort()
    ms = [value * 1000 for value in latencies]
    return Result(
        target=target,
        label=label,
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


def progress(name: str, result: Result) -> None:
    """One line per measured scenario on stderr."""
    print(
        f"  {name:<6} c={result.concurrency:<3} {result.requests_per_second:>8.1f} req/s  "
        f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms",
        file=sys.stderr,
        flush=True,
    )


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


BASE_PACKAGES = (
    "relais",
    "grpcio",
    "protobuf",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "sqlalchemy",
    "aiosqlite",
)


def versions(packages: Iterable[str] = BASE_PACKAGES) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)
