"""Many streams at once: memory per open stream and time to first token at 200 and 500
concurrent streams, and where the time goes (issue 14, item 5).

    .venv/bin/python -m bench streams            # 200 and 500 streams, SSE and gRPC
    .venv/bin/python -m bench streams --quick    # 50 streams

Two children, as in bench/llm.py: the Triton stand-in (tests/support/triton_standin.py) with one
model that sends a token every TOKEN_DELAY seconds (so every stream stays open for seconds), and
Relais as `relais serve` runs it, serving that model. This process opens N streams at the same
moment (SSE: one HTTP/1.1 connection each; gRPC: one channel, N calls on it) and records, per
stream, the time to its first token, and, every SAMPLE_EVERY seconds, the Relais child's RSS and
how many streams are receiving tokens.

Per scenario: a first run of N streams (the allocator and the pools grow once: its figure is the
"first run" column), then the idle RSS, then the measured run. Memory per open stream = (RSS at
the sample where the most streams were streaming - idle RSS) / that number of streams.
Where the time goes: the client's TTFT is split into the server's own TTFT (Relais' histogram
relais_llm_time_to_first_token_seconds: from the servicer asking the backend to its first token)
and the rest (HTTP, bridge, gRPC hop, interceptors, and waiting for the event loop), with the
Relais child's CPU per stream start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench.common import ServerProcess

NAME = "streams"
MODEL_KEY = "paced"
TOKEN_DELAY = 0.1  # seconds between two tokens of one stream
MAX_TOKENS = 40  # 4 s of tokens per stream
SAMPLE_EVERY = 0.05
EMAIL = "admin@bench.local"
CHILD_CONFIG = "bench-streams.json"
STREAM_TIMEOUT = 180.0


# ── Server side: the children ───────────────────────────────────────────────────────────────


async def serve_triton(data_dir: Path) -> common.Served:
    from starlette.applications import Starlette

    from tests.support.triton_standin import StandInModel, TritonStandIn

    standin = TritonStandIn([StandInModel(name=MODEL_KEY, token_delay=TOKEN_DELAY)])
    port = await standin.start()
    return common.Served(app=Starlette(), grpc_port=port, close=standin.stop)


async def serve_relais(data_dir: Path) -> common.Served:
    config = json.loads((data_dir / CHILD_CONFIG).read_text())
    served = await common.start_relais(
        data_dir,
        admin_email=EMAIL,
        admin_password=config["admin_password"],
        models=[
            {
                "key": MODEL_KEY,
                "backend": "triton",
                "url": config["triton_url"],
                "model_name": MODEL_KEY,
                "context_window": 8192,
            }
        ],
        default_model=MODEL_KEY,
        llm_preload=False,
        retrieval_preload=False,
        **config.get("settings", {}),
    )
    from server.memory import settle, tune_allocator

    tune_allocator()  # as `relais serve` does (there before anything starts)
    settle()  # as `relais serve` does once it is up
    if profile := os.environ.get("BENCH_PROFILE"):
        # BENCH_PROFILE=FILE: a cProfile of the Relais child for the whole run, written when it stops.
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        close = served.close

        async def close_and_write() -> None:
            profiler.disable()
            profiler.dump_stats(profile)
            if close is not None:
                await close()

        served.close = close_and_write
    return served


SERVERS = {"triton": serve_triton, "relais": serve_relais}


# ── Client side ─────────────────────────────────────────────────────────────────────────────


@dataclass
class Probe:
    """What the client sees of one run: per stream, its first token and end; the samples."""

    started: float = 0.0
    first: dict[int, float] = field(default_factory=dict)
    ended: dict[int, float] = field(default_factory=dict)
    queued: int = 0  # streams told their place in the admission queue
    refused: int = 0  # streams refused with 429

    def streaming(self) -> int:
        return sum(1 for index in self.first if index not in self.ended)


Stream = Callable[[int, Probe], Awaitable[None]]


def sse_streams(base_url: str, token: str, count: int) -> contextlib.AbstractAsyncContextManager[Stream]:
    """POST /llm/stream on a raw asyncio connection each: an HTTP client light enough that 500
    streams on a shared core measure the server, not the client (httpx took a core of its own here)."""
    import orjson

    body = orjson.dumps({"prompt": "x", "model": MODEL_KEY, "max_tokens": MAX_TOKENS})
    host, port = base_url.removeprefix("http://").split(":")
    head = (
        f"POST /llm/stream HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()

    @contextlib.asynccontextmanager
    async def opened() -> Any:
        async def stream(index: int, probe: Probe) -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(head + body)
                status = await reader.readline()
                if b" 429 " in status:
                    probe.refused += 1
                    return
                seen = b""
                while chunk := await reader.read(65536):
                    if index not in probe.first and b"event: token" in seen[-16:] + chunk:
                        probe.first[index] = time.perf_counter()
                    if b'"queued"' in chunk:
                        probe.queued += 1
                    seen = chunk
                probe.ended[index] = time.perf_counter()
            finally:
                writer.close()

        yield stream

    return opened()


def grpc_streams(target: str, token: str) -> contextlib.AbstractAsyncContextManager[Stream]:
    import grpc
    from relais.v1 import inference_pb2, inference_pb2_grpc

    @contextlib.asynccontextmanager
    async def opened() -> Any:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = inference_pb2.GenerateRequest(prompt="x", model=MODEL_KEY, max_tokens=MAX_TOKENS)
            metadata = (("authorization", f"Bearer {token}"),)

            async def stream(index: int, probe: Probe) -> None:
                try:
                    async for event in stub.GenerateStream(request, metadata=metadata, timeout=STREAM_TIMEOUT):
                        if event.HasField("token") and index not in probe.first:
                            probe.first[index] = time.perf_counter()
                        elif event.HasField("status") and event.status.queue_position:
                            probe.queued += 1
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    probe.refused += 1
                probe.ended[index] = time.perf_counter()

            yield stream

    return opened()


@dataclass(frozen=True, slots=True)
class Row:
    target: str
    streams: int
    streamed_at_once: int
    queued: int
    refused: int
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_max_ms: float
    server_ttft_mean_ms: float
    rest_of_ttft_mean_ms: float
    relais_cpu_ms_per_stream: float
    idle_rss_mb: float
    peak_rss_mb: float
    kb_per_open_stream: float
    cold_kb_per_open_stream: float
    rss_after_mb: float


async def metric_sum_count(base_url: str, name: str) -> tuple[float, float]:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=common.CALL_TIMEOUT) as client:
        text = (await client.get("/metrics")).text
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{name}_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


async def run_once(relais: ServerProcess, opened: Any, count: int) -> tuple[Probe, int, int, int]:
    """N streams at once; the probe, the peak RSS (bytes), and the RSS when the most streamed with
    how many streamed then."""
    import psutil

    process = psutil.Process(relais.process.pid)
    probe = Probe()
    peak = at_most = most = 0
    async with opened as stream:
        tasks = [asyncio.create_task(stream(index, probe)) for index in range(count)]
        probe.started = time.perf_counter()
        while not all(task.done() for task in tasks):
            await asyncio.sleep(SAMPLE_EVERY)
            rss, streaming = process.memory_info().rss, probe.streaming()
            peak = max(peak, rss)
            if streaming >= most:
                most, at_most = streaming, rss
        for task in tasks:
            task.result()
    return probe, peak, at_most, most


async def scenario(target: str, relais: ServerProcess, token: str, count: int) -> Row:
    import psutil

    def opened() -> Any:
        if target == "sse":
            return sse_streams(relais.base_url, token, count)
        return grpc_streams(f"127.0.0.1:{relais.ports['grpc_port']}", token)

    process = psutil.Process(relais.process.pid)
    cold_idle = process.memory_info().rss
    _, _, cold_all_open, cold_most = await run_once(relais, opened(), count)  # warm-up
    await asyncio.sleep(2)
    idle = process.memory_info().rss
    ttft_sum, ttft_count = await metric_sum_count(relais.base_url, "relais_llm_time_to_first_token_seconds")
    cpu = relais.cpu_seconds()
    probe, peak, all_open, most = await run_once(relais, opened(), count)
    run_cpu = relais.cpu_seconds() - cpu  # starting each stream and relaying its MAX_TOKENS tokens
    ttft_sum2, ttft_count2 = await metric_sum_count(relais.base_url, "relais_llm_time_to_first_token_seconds")
    await asyncio.sleep(2)
    after = process.memory_info().rss
    ttfts = sorted((first - probe.started) * 1000 for first in probe.first.values())
    server_ttft = (ttft_sum2 - ttft_sum) / max(1.0, ttft_count2 - ttft_count) * 1000
    row = Row(
        target=target,
        streams=count,
        streamed_at_once=max_overlap(probe),
        queued=probe.queued,
        refused=probe.refused,
        ttft_p50_ms=round(common.percentile(ttfts, 50), 1),
        ttft_p90_ms=round(common.percentile(ttfts, 90), 1),
        ttft_max_ms=round(ttfts[-1], 1),
        server_ttft_mean_ms=round(server_ttft, 1),
        rest_of_ttft_mean_ms=round(statistics.fmean(ttfts) - server_ttft, 1),
        relais_cpu_ms_per_stream=round(run_cpu * 1000 / count, 2),
        idle_rss_mb=round(idle / 2**20, 1),
        peak_rss_mb=round(peak / 2**20, 1),
        kb_per_open_stream=round((all_open - idle) / max(1, most) / 1024, 1),
        cold_kb_per_open_stream=round((cold_all_open - cold_idle) / max(1, cold_most) / 1024, 1),
        rss_after_mb=round(after / 2**20, 1),
    )
    print(f"  {target} x{count}: {row}", file=sys.stderr, flush=True)
    return row


def max_overlap(probe: Probe) -> int:
    """The most streams that were between their first token and their end at the same moment."""
    marks = sorted([(t, 1) for t in probe.first.values()] + [(t, -1) for t in probe.ended.values()])
    current = most = 0
    for _, step in marks:
        current += step
        most = max(most, current)
    return most


async def login(base_url: str, password: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=common.CALL_TIMEOUT) as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": password})
    return str(response.json()["access_token"])


def markdown(rows: list[Row]) -> str:
    lines = [
        "| target | streams | streamed at once | queued | 429 | TTFT p50 ms | p90 | max | server TTFT ms (mean) "
        "| rest of TTFT ms (mean) | Relais CPU ms/stream | idle RSS MB | peak RSS MB | KB per open stream "
        "| (first run) | RSS after MB |",
        "|---|" + "---:|" * 15,
    ]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.streams} | {r.streamed_at_once} | {r.queued} | {r.refused} | {r.ttft_p50_ms:.0f} "
            f"| {r.ttft_p90_ms:.0f} | {r.ttft_max_ms:.0f} | {r.server_ttft_mean_ms:.1f} | {r.rest_of_ttft_mean_ms:.0f} "
            f"| {r.relais_cpu_ms_per_stream:.1f} | {r.idle_rss_mb:.0f} | {r.peak_rss_mb:.0f} "
            f"| {r.kb_per_open_stream:.1f} | {r.cold_kb_per_open_stream:.1f} | {r.rss_after_mb:.0f} |"
        )
    return "\n".join(lines)


async def measure(args: argparse.Namespace, data_root: Path) -> list[Row]:
    password = secrets.token_urlsafe(16)
    triton = ServerProcess("bench.streams", "triton", data_root / "triton")
    relais: ServerProcess | None = None
    try:
        relais_dir = data_root / "relais"
        relais_dir.mkdir(parents=True, exist_ok=True)
        config = {"admin_password": password, "triton_url": f"127.0.0.1:{triton.ports['grpc_port']}"}
        (relais_dir / CHILD_CONFIG).write_text(json.dumps(config))
        relais = ServerProcess("bench.streams", "relais", relais_dir)
        token = await login(relais.base_url, password)
        counts = [50] if args.quick else (args.concurrency or [200, 500])
        return [await scenario(target, relais, token, count) for count in counts for target in ("sse", "grpc")]
    finally:
        if relais is not None:
            relais.stop()
        triton.stop()


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="relais-bench-streams-") as directory:
        rows = asyncio.run(measure(args, Path(directory)))
    print(markdown(rows))
    common.write_json(
        common.output_path(args, NAME),
        {
            "benchmark": NAME,
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "token_delay_s": TOKEN_DELAY,
            "max_tokens": MAX_TOKENS,
            "rows": [asdict(row) for row in rows],
        },
    )
    return 0


if __name__ == "__main__":
    common.serve_main(sys.argv[1:], "bench.streams", SERVERS)
