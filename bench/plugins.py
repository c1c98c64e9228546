"""A plugin route vs the same RPC as a built-in route, and how long a plugin takes to start.

    .venv/bin/python -m bench plugins            # 2000 requests per scenario after 200 warm-up
    .venv/bin/python -m bench plugins --quick    # smoke run

The same operation, hello.v1.HelloService/Greet (the shipped hello plugin's GET /hello/greet/{name}),
served two ways by two Relais children (`python -m bench.plugins serve builtin|plugin DATA_DIR`):

    builtin   the RPC implemented inside the Relais process (a servicer registered on RelaisServer,
              its descriptor compiled into the bridge's table at start-up): the baseline
    plugin    the shipped hello plugin: the bridge learns the route over WatchPluginRoutes, the
              server authenticates the call and forwards it to the plugin's process over its
              Unix socket

Each is measured through the bridge (HTTP) and on the gRPC port directly, with the caller
authenticated the same way (a bearer token). The plugin child's CPU includes its plugin process.
Start time: the plugin's virtualenv made over the runtime, then N cold starts of its process
(spawn → handshake → health SERVING → Describe), for hello (MCP tools: imports the MCP SDK) and a
plugin without tools.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import REPO_ROOT, common
from bench.common import Call, Result, ServerProcess

NAME = "plugins"
HELLO = REPO_ROOT / "plugins" / "hello"
ADMIN = ("bench-admin@relais.test", "bench-admin-password-1")
LABELS = {
    "builtin-http": "built-in route (bridge -> gRPC)",
    "plugin-http": "plugin route (bridge -> gRPC -> plugin)",
    "builtin-grpc": "built-in RPC (gRPC)",
    "plugin-grpc": "plugin RPC (gRPC -> plugin)",
}
BASELINES = {"plugin-http": "builtin-http", "plugin-grpc": "builtin-grpc"}


def hello_descriptors() -> bytes:
    from server.plugins.pack import pack

    with zipfile.ZipFile(io.BytesIO(pack(HELLO))) as bundle:
        return bundle.read("descriptors.binpb")


# ── Server side: runs in the child processes ────────────────────────────────────────────────


async def serve_builtin(data_dir: Path) -> common.Served:
    """Relais with hello's Greet implemented in-process, as a domain's servicer would be."""
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from bridge.app import create_app
    from bridge.bindings import contract_services
    from server.app import RelaisServer
    from server.config import Settings
    from server.registration import ServiceRegistration

    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(hello_descriptors()).file:
        pool.Add(file)
    service = pool.FindServiceByName("hello.v1.HelloService")
    method = service.methods_by_name["Greet"]
    request, response = (message_factory.GetMessageClass(t) for t in (method.input_type, method.output_type))

    async def greet(message: Any, context: Any) -> Any:
        return response(message=f"Hello, {message.name}!", version="1.0.0")

    handler = grpc.method_handlers_generic_handler(
        service.full_name,
        {"Greet": grpc.unary_unary_rpc_method_handler(greet, request.FromString, response.SerializeToString)},
    )
    registration = ServiceRegistration(
        add=lambda server: server.add_generic_rpc_handlers([handler]), name=service.full_name
    )
    settings = Settings(
        host="127.0.0.1", grpc_port=0, http_port=0, data_dir=data_dir, min_free_disk_bytes=0, **_settings()
    )
    server = RelaisServer(settings, extra_services=[registration])
    port = await server.start()
    app = create_app(upstream=f"127.0.0.1:{port}", services=[*contract_services(), service])

    async def close() -> None:
        await server.stop(grace=1)

    return common.Served(app=app, grpc_port=port, close=close)


async def serve_plugin(data_dir: Path) -> common.Served:
    """Relais as shipped: the hello plugin installed and enabled at first start."""
    return await common.start_relais(data_dir, **{**_settings(), "plugins_shipped": ["hello"]})


def _settings() -> dict[str, Any]:
    return {
        "admin_email": ADMIN[0],
        "admin_password": ADMIN[1],
        "llm_preload": False,
        "retrieval_preload": False,
        "plugins_shipped": [],
        **common.RELAIS_RATE_LIMITS,
    }


def serve_main(argv: list[str]) -> None:
    common.serve_main(argv, "bench.plugins", {"builtin": serve_builtin, "plugin": serve_plugin})


# ── Client side ────────────────────────────────────────────────────────────────────────────


def tree_cpu_seconds(server: ServerProcess) -> float:
    """CPU of the server child and of its children (the plugin process)."""
    import psutil

    total = server.cpu_seconds()
    for child in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


class TreeProcess:
    """A ServerProcess whose CPU counts its children (what measure_call reads)."""

    def __init__(self, server: ServerProcess) -> None:
        self._server = server

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self._server)


async def token(base_url: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=common.CALL_TIMEOUT) as http:
        answer = await http.post("/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        answer.raise_for_status()
        return str(answer.json()["access_token"])


async def wait_for_plugin(base_url: str, bearer: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {bearer}"}) as http:
        deadline = time.monotonic() + common.READY_TIMEOUT
        while (await http.get("/hello/greet/ready")).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the hello plugin's route never answered")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def http_caller(base_url: str, bearer: str, concurrency: int) -> AsyncIterator[Call]:
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:
        headers = {"Authorization": f"Bearer {bearer}"}

        async def call(worker: int) -> None:
            response = await clients[worker].get("/hello/greet/bench", headers=headers)
            if response.status_code != 200 or response.json()["message"] != "Hello, bench!":
                raise RuntimeError(f"GET /hello/greet/bench: {response.status_code} {response.text[:200]}")

        yield call


@contextlib.asynccontextmanager
async def grpc_caller(target: str, bearer: str) -> AsyncIterator[Call]:
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(hello_descriptors()).file:
        pool.Add(file)
    method = pool.FindMethodByName("hello.v1.HelloService.Greet")
    request, response = (message_factory.GetMessageClass(t) for t in (method.input_type, method.output_type))
    async with grpc.aio.insecure_channel(target) as channel:
        greet = channel.unary_unary(
            "/hello.v1.HelloService/Greet",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        message, metadata = request(name="bench"), [("authorization", f"Bearer {bearer}")]

        async def call(worker: int) -> None:
            answer = await greet(message, metadata=metadata, timeout=common.CALL_TIMEOUT)
            if answer.message != "Hello, bench!":
                raise RuntimeError(f"Greet answered {answer!r}")

        yield call


async def measure_routes(args: argparse.Namespace, servers: dict[str, ServerProcess]) -> list[Result]:
    bearers = {kind: await token(server.base_url) for kind, server in servers.items()}
    await wait_for_plugin(servers["plugin"].base_url, bearers["plugin"])
    results = []
    for concurrency in args.concurrency:
        for target in LABELS:
            kind, transport = target.split("-")
            server = servers[kind]
            caller = (
                http_caller(server.base_url, bearers[kind], concurrency)
                if transport == "http"
                else grpc_caller(f"127.0.0.1:{server.ports['grpc_port']}", bearers[kind])
            )
            async with caller as call:
                result = await common.measure_call(
                    call,
                    target=target,
                    label=LABELS[target],
                    server=TreeProcess(server),  # type: ignore[arg-type]
                    concurrency=concurrency,
                    requests=args.requests,
                    warmup=args.warmup,
                )
            common.progress(target, result)
            results.append(result)
    return results


def compare(results: list[Result]) -> list[dict[str, Any]]:
    """Each plugin target against its built-in twin: ratios and the latency it adds."""
    by_key = {(r.target, r.concurrency): r for r in results}
    rows = []
    for result in results:
        base = by_key.get((BASELINES.get(result.target, ""), result.concurrency))
        if base is None:
            continue
        rows.append(
            {
                "target": result.target,
                "concurrency": result.concurrency,
                "throughput_ratio": round(result.requests_per_second / base.requests_per_second, 3),
                "added_p50_ms": round(result.p50_ms - base.p50_ms, 3),
                "added_p99_ms": round(result.p99_ms - base.p99_ms, 3),
                "server_cpu_ratio": round(result.server_cpu_ms_per_request / base.server_cpu_ms_per_request, 3),
            }
        )
    return rows


async def start_times(scratch: Path, starts: int) -> dict[str, Any]:
    """Virtualenv creation, then `starts` cold starts of each plugin's process (ms)."""
    from server.plugins.bundle import BundleLimits, Trust, open_bundle
    from server.plugins.environment import build_runtime, create_venv
    from server.plugins.logs import PluginLog
    from server.plugins.pack import pack
    from server.plugins.process import PluginProcess, ProcessSpec

    minimal = scratch / "minimal"
    (minimal / "minimal_plugin").mkdir(parents=True)
    (minimal / "minimal_plugin" / "__init__.py").write_text("")
    (minimal / "minimal_plugin" / "main.py").write_text("from relais_plugin import Plugin\nPlugin().run()\n")
    (minimal / "plugin.toml").write_text('id = "minimal"\nversion = "1"\nentry_point = "minimal_plugin.main"\n')
    started = time.perf_counter()
    runtime = build_runtime(scratch / "runtime")
    figures: dict[str, Any] = {"runtime_assembly_ms": round((time.perf_counter() - started) * 1000, 1)}
    for name, source in (("hello", HELLO), ("minimal", minimal)):
        bundle_dir = scratch / name / "bundle"
        bundle_dir.mkdir(parents=True)
        bundle = open_bundle(pack(source), limits=BundleLimits(), trust=Trust(allow_unsigned=True), into=bundle_dir)
        started = time.perf_counter()
        python = await create_venv(scratch / name / "venv", runtime, bundle_dir, bundle.manifest)
        venv_ms = (time.perf_counter() - started) * 1000
        spec = ProcessSpec(
            plugin_id=name,
            python=python,
            bundle_dir=bundle_dir,
            work_dir=scratch / name / "work",
            entry_point=bundle.manifest.entry_point,
        )
        samples = []
        for _ in range(starts):
            process = PluginProcess(spec, PluginLog())
            started = time.perf_counter()
            await process.start(60)
            samples.append((time.perf_counter() - started) * 1000)
            await process.stop(5)
        samples.sort()
        figures[name] = {
            "venv_ms": round(venv_ms, 1),
            "start_p50_ms": round(common.percentile(samples, 50), 1),
            "start_max_ms": round(samples[-1], 1),
            "starts": starts,
        }
        print(f"  start {name}: p50 {figures[name]['start_p50_ms']} ms", file=sys.stderr, flush=True)
    return figures


def markdown(results: list[Result], rows: list[dict[str, Any]], starts: dict[str, Any]) -> str:
    lines = [common.markdown(results, []).split("\n\n")[0], ""]
    lines += [
        "| plugin vs built-in | conc. | throughput | added p50 ms | added p99 ms | server CPU/req |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {LABELS[row['target']]} | {row['concurrency']} | {row['throughput_ratio']:.2f}x | "
            f"{row['added_p50_ms']:+.2f} | {row['added_p99_ms']:+.2f} | {row['server_cpu_ratio']:.2f}x |"
        )
    lines += ["", "| plugin | virtualenv ms | start p50 ms | start max ms |", "|---|---:|---:|---:|"]
    for name in ("hello", "minimal"):
        figure = starts[name]
        lines.append(f"| {name} | {figure['venv_ms']} | {figure['start_p50_ms']} | {figure['start_max_ms']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench plugins`."""
    args = common.resolve_defaults(args, requests=(2000, 200), warmup=(200, 20), concurrency=[1, 16])
    output = common.output_path(args, NAME)
    print(f"# plugins: {args.requests} requests per scenario, concurrency {args.concurrency}", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch:
        with common.server_processes("bench.plugins", Path(scratch), ("builtin", "plugin")) as servers:
            results = asyncio.run(measure_routes(args, servers))
        starts = asyncio.run(start_times(Path(scratch) / "starts", 3 if args.quick else 10))
    rows = compare(results)
    print()
    print(f"## Plugin route vs built-in route: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print(markdown(results, rows, starts))
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "versions": common.versions(),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "plugin_vs_builtin": rows,
        "start": starts,
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
