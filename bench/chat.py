"""FoyerGPT chat: the cost of persisting a streamed reply, and idle Socket.IO connections' memory.

    .venv/bin/python -m bench chat            # concurrency 1 and 16, max(100, 10 x concurrency) requests each
    .venv/bin/python -m bench chat --quick    # smoke run

The same two children as `bench.llm` (a Triton stand-in with the model "echo", token_delay 0, and
Relais with the model "fast" pointing at it), and this process as the load generator.

Part 1, persistence overhead. Two targets streaming a 256-token reply from the same backend:

    grpc   relais.v1.InferenceService/GenerateStream over grpc.aio (bench.llm.grpc_stream): no storage
    sse    FoyerGPT's GET /api/messages/stream/{chat_id}?message=... (httpx, Bearer token): stores the
           user message and the (empty) assistant message in one transaction, rewrites the latter at
           most every second and completes it at the end

Each SSE request streams into a fresh chat (POST /api/chats, created before the scenario's clock
starts), so every request sends the model the same one-message history.

Part 2, 500 idle Socket.IO connections (50 with --quick) on the Relais child: raw Engine.IO v4
WebSockets (websockets client), Socket.IO CONNECT with the access token, pings answered, held
~10 s; the child's RSS before and while they are open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, llm
from bench.common import ServerProcess
from bench.llm import MAX_TOKENS, PROMPT, Sample, Stream

NAME = "chat"
TARGETS = ("grpc", "sse")
LABELS = {
    "grpc": "Relais gRPC GenerateStream (no storage)",
    "sse": "FoyerGPT SSE GET /api/messages/stream (stored)",
}
ROUNDS = 2  # targets measured in alternating order per round, as bench.llm
SOCKETS = 500
SOCKETS_QUICK = 50
HOLD_SECONDS = 10.0
OPEN_PARALLEL = 64  # handshakes in flight while opening the sockets (each one is a CheckAccess call)


def requests_for(args: argparse.Namespace, concurrency: int) -> int:
    """--requests, else max(100, 10 per worker) (max(10, 2 per worker) with --quick)."""
    if args.requests is not None:
        return int(args.requests)
    return max(10, 2 * concurrency) if args.quick else max(100, 10 * concurrency)


# ── Server side: runs in the child processes ────────────────────────────────────────────────


async def serve_relais(data_dir: Path) -> common.Served:
    return await llm.serve_relais(data_dir, llm_default_max_tokens=MAX_TOKENS)


SERVERS = {"triton": llm.serve_triton, "relais": serve_relais}


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.chat serve triton|relais DATA_DIR`."""
    common.serve_main(argv, "bench.chat", SERVERS)


# ── Part 1: streamed replies, stored (SSE) or not (gRPC) ────────────────────────────────────


class SseChats:
    """FoyerGPT streaming, one keep-alive HTTP/1.1 connection per worker. `prepare(n)` creates n
    empty chats before a batch; each request takes one. Frames are counted as they come; the
    stand-in's tokens each end with exactly one space, so the text's spaces count the tokens."""

    def __init__(self, clients: list[Any], token: str) -> None:
        self.clients = clients
        self.headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
        self.chats: list[int] = []

    async def prepare(self, count: int) -> None:
        client = self.clients[0]
        for _ in range(count):
            response = await client.post("/api/chats", json={}, headers=self.headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"POST /api/chats: {response.status_code} {response.text[:300]}")
            self.chats.append(int(response.json()["id"]))

    async def __call__(self, worker: int) -> Sample:
        import orjson

        chat_id = self.chats.pop()
        started = time.perf_counter()
        ttft = 0.0
        frames = 0
        text: list[str] = []
        done = False
        url = f"/api/messages/stream/{chat_id}"
        params = {"message": PROMPT}
        async with self.clients[worker].stream("GET", url, params=params, headers=self.headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"sse: GET {url}: {response.status_code} {response.text[:300]}")
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    continue
                frame = orjson.loads(line[6:])
                if "error" in frame:
                    raise RuntimeError(f"sse: stream error: {line[6:300]}")
                if frame.get("token"):
                    if not frames:
                        ttft = time.perf_counter() - started
                    frames += 1
                    text.append(frame["token"])
        e2e = time.perf_counter() - started
        if not done:
            raise RuntimeError("sse: the stream ended without data: [DONE]")
        tokens = "".join(text).count(" ")
        return llm._checked("sse", Sample(ttft, e2e, tokens, frames), MAX_TOKENS)


@dataclass(frozen=True, slots=True)
class ChatResult:
    target: str
    label: str
    concurrency: int
    requests: int
    seconds: float
    requests_per_second: float
    output_tokens_per_second: float
    frames_per_second: float  # token messages (SSE frames, gRPC token events) per second
    messages_per_request: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    relais_cpu_ms_per_request: float


def _result(target: str, concurrency: int, samples: list[Sample], seconds: float, cpu: float) -> ChatResult:
    ttft = sorted(sample.ttft * 1000 for sample in samples)
    e2e = sorted(sample.e2e * 1000 for sample in samples)
    messages = sum(sample.messages for sample in samples)
    return ChatResult(
        target=target,
        label=LABELS[target],
        concurrency=concurrency,
        requests=len(samples),
        seconds=round(seconds, 4),
        requests_per_second=round(len(samples) / seconds, 2),
        output_tokens_per_second=round(sum(sample.tokens for sample in samples) / seconds, 1),
        frames_per_second=round(messages / seconds, 1),
        messages_per_request=round(messages / len(samples), 1),
        ttft_p50_ms=round(common.percentile(ttft, 50), 3),
        ttft_p99_ms=round(common.percentile(ttft, 99), 3),
        e2e_p50_ms=round(common.percentile(e2e, 50), 3),
        e2e_p99_ms=round(common.percentile(e2e, 99), 3),
        relais_cpu_ms_per_request=round(cpu * 1000 / len(samples), 2),
    )


async def run_streams(
    args: argparse.Namespace, servers: dict[str, ServerProcess], token: str
) -> tuple[list[ChatResult], list[dict[str, Any]]]:
    relais = servers["relais"]
    results: list[ChatResult] = []
    plan: list[dict[str, Any]] = []
    for concurrency in args.concurrency:
        requests, warmup = requests_for(args, concurrency), llm.warmup_for(args, concurrency)
        rounds = max(1, min(ROUNDS, requests // concurrency))
        shares = [requests // rounds + (1 if index < requests % rounds else 0) for index in range(rounds)]
        plan.append({"concurrency": concurrency, "requests": requests, "warmup": warmup, "rounds": shares})
        print(f"  c={concurrency}: {requests} requests per target after {warmup} warm-up", file=sys.stderr, flush=True)
        async with contextlib.AsyncExitStack() as stack:
            grpc = await stack.enter_async_context(
                llm.grpc_stream(f"127.0.0.1:{relais.ports['grpc_port']}", token, MAX_TOKENS)
            )
            clients = await stack.enter_async_context(common.http_clients(relais.base_url, concurrency, cookies=False))
            sse = SseChats(clients, token)
            streams: dict[str, Stream] = {"grpc": grpc, "sse": sse}
            await llm.drive_streams(grpc, warmup, concurrency)
            await sse.prepare(warmup)
            await llm.drive_streams(sse, warmup, concurrency)
            tallies: dict[str, tuple[list[Sample], list[float]]] = {target: ([], [0.0, 0.0]) for target in TARGETS}
            for index, share in enumerate(shares):
                for target in TARGETS if index % 2 == 0 else reversed(TARGETS):
                    if target == "sse":
                        await sse.prepare(share)  # before the clock
                    cpu = relais.cpu_seconds()
                    samples, seconds = await llm.drive_streams(streams[target], share, concurrency)
                    tallies[target][0].extend(samples)
                    tallies[target][1][0] += seconds
                    tallies[target][1][1] += relais.cpu_seconds() - cpu
        for target in TARGETS:
            samples, (seconds, cpu) = tallies[target]
            result = _result(target, concurrency, samples, seconds, cpu)
            print(
                f"  {target:<5} c={concurrency:<3} {result.output_tokens_per_second:>9.0f} tok/s  "
                f"TTFT p50 {result.ttft_p50_ms:.2f} ms  p99 {result.ttft_p99_ms:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results, plan


def versus_grpc(results: list[ChatResult]) -> list[dict[str, Any]]:
    by_key = {(result.target, result.concurrency): result for result in results}
    rows = []
    for result in results:
        base = by_key.get(("grpc", result.concurrency))
        if base is None or result.target == "grpc":
            continue
        rows.append(
            {
                "concurrency": result.concurrency,
                "throughput_ratio": round(result.output_tokens_per_second / base.output_tokens_per_second, 3),
                "frames_vs_grpc_messages_ratio": round(result.frames_per_second / base.frames_per_second, 3),
                "added_ttft_p50_ms": round(result.ttft_p50_ms - base.ttft_p50_ms, 3),
                "added_ttft_p99_ms": round(result.ttft_p99_ms - base.ttft_p99_ms, 3),
            }
        )
    return rows


def streams_markdown(results: list[ChatResult], rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target | conc. | requests | output tok/s | token msgs/s | msgs/req | TTFT p50 ms | TTFT p99 ms "
        "| e2e p50 ms | Relais CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.concurrency} | {r.requests} | {r.output_tokens_per_second:,.0f} | "
            f"{r.frames_per_second:,.0f} | {r.messages_per_request:.0f} | {r.ttft_p50_ms:.2f} | {r.ttft_p99_ms:.2f} | "
            f"{r.e2e_p50_ms:.1f} | {r.relais_cpu_ms_per_request:.1f} |"
        )
    lines += [
        "",
        "SSE (stored) against gRPC (not stored) at the same concurrency:",
        "",
        "| conc. | output tok/s ratio | SSE frames/s / gRPC msgs/s | added TTFT p50 ms | added TTFT p99 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['concurrency']} | {row['throughput_ratio']:.2f} | {row['frames_vs_grpc_messages_ratio']:.2f} | "
            f"{row['added_ttft_p50_ms']:+.2f} | {row['added_ttft_p99_ms']:+.2f} |"
        )
    return "\n".join(lines)


# ── Part 2: idle Socket.IO connections ──────────────────────────────────────────────────────


class IdleSocket:
    """One Engine.IO v4 WebSocket with a Socket.IO connection, answering pings until closed."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.socket: Any = None
        self.task: asyncio.Task[None] | None = None
        self.error = ""

    async def open(self) -> bool:
        from websockets.asyncio.client import connect

        try:
            async with asyncio.timeout(common.CALL_TIMEOUT):
                self.socket = await connect(self.url, ping_interval=None, close_timeout=2, compression=None)
                opened = await self.socket.recv()
                if not opened.startswith("0{"):
                    raise RuntimeError(f"no Engine.IO open packet: {opened[:100]!r}")
                await self.socket.send("40" + json.dumps({"token": self.token}))
                while True:
                    reply = await self.socket.recv()
                    if reply == "2":
                        await self.socket.send("3")
                        continue
                    if not reply.startswith("40{"):
                        raise RuntimeError(f"Socket.IO CONNECT refused: {reply[:200]!r}")
                    break
        except Exception as error:  # counted, not fatal: the report says how many connected
            self.error = f"{type(error).__name__}: {error}"
            await self.close()
            return False
        self.task = asyncio.get_running_loop().create_task(self._answer_pings())
        return True

    async def _answer_pings(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.socket:
                if message == "2":
                    await self.socket.send("3")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.socket is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.socket.close()


async def run_sockets(relais: ServerProcess, token: str, count: int) -> dict[str, Any]:
    import psutil

    process = psutil.Process(relais.process.pid)
    url = relais.base_url.replace("http://", "ws://", 1) + "/ws/socket.io/?EIO=4&transport=websocket"
    await asyncio.sleep(1.0)  # let the streams' leftovers settle
    baseline = process.memory_info().rss
    sockets = [IdleSocket(url, token) for _ in range(count)]
    gate = asyncio.Semaphore(OPEN_PARALLEL)

    async def open_one(socket: IdleSocket) -> bool:
        async with gate:
            return await socket.open()

    print(f"  opening {count} Socket.IO connections", file=sys.stderr, flush=True)
    try:
        started = time.perf_counter()
        opened = await asyncio.gather(*(open_one(socket) for socket in sockets))
        open_seconds = time.perf_counter() - started
        connected = sum(opened)
        errors = sorted({socket.error for socket in sockets if socket.error})
        await asyncio.sleep(HOLD_SECONDS)
        still_open = sum(1 for socket in sockets if socket.task is not None and not socket.task.done())
        held = process.memory_info().rss
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
    added = held - baseline
    summary = {
        "connections": count,
        "connected": connected,
        "still_open_after_hold": still_open,
        "open_seconds": round(open_seconds, 2),
        "hold_seconds": HOLD_SECONDS,
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_held_mb": round(held / 2**20, 1),
        "rss_added_mb": round(added / 2**20, 2),
        "rss_added_kb_per_connection": round(added / 1024 / connected, 1) if connected else None,
        "errors": errors[:5],
    }
    print(
        f"  sockets: {connected}/{count} connected, {still_open} open after {HOLD_SECONDS:g} s, "
        f"+{summary['rss_added_mb']} MB",
        file=sys.stderr,
        flush=True,
    )
    return summary


def sockets_markdown(summary: dict[str, Any]) -> str:
    per = summary["rss_added_kb_per_connection"]
    return "\n".join(
        [
            "| connections | connected | open after hold | open time s | Relais RSS before MB | while open MB "
            "| added MB | added KB/connection |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {summary['connections']} | {summary['connected']} | {summary['still_open_after_hold']} | "
            f"{summary['open_seconds']:.1f} | {summary['rss_baseline_mb']:.1f} | {summary['rss_held_mb']:.1f} | "
            f"{summary['rss_added_mb']:+.1f} | {'n/a' if per is None else f'{per:.1f}'} |",
        ]
    )


# ── Entry point ─────────────────────────────────────────────────────────────────────────────


async def _run_all(
    args: argparse.Namespace, servers: dict[str, ServerProcess], password: str, sockets: int
) -> tuple[list[ChatResult], list[dict[str, Any]], dict[str, Any]]:
    token = await llm.login(servers["relais"].base_url, password)
    results, plan = await run_streams(args, servers, token)
    summary = await run_sockets(servers["relais"], token, sockets)
    return results, plan, summary


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench chat`."""
    args = argparse.Namespace(**vars(args))
    if args.concurrency is None:
        args.concurrency = [1, 16]
    output = common.output_path(args, NAME)
    sockets = SOCKETS_QUICK if args.quick else SOCKETS
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# chat: {MAX_TOKENS} tokens per reply, concurrency {', '.join(map(str, args.concurrency))}, "
        f"{sockets} Socket.IO connections{quick_note}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    password = f"bench-{secrets.token_urlsafe(24)}-1"
    with (
        tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch,
        llm.children(Path(scratch), password, module="bench.chat") as servers,
    ):
        results, plan, summary = asyncio.run(_run_all(args, servers, password, sockets))
    rows = versus_grpc(results)
    cpus = os.cpu_count()
    print()
    print(
        f"## Chat replies, stored (FoyerGPT SSE) vs not (gRPC GenerateStream): {cpus} CPUs, "
        f"Python {platform.python_version()}, {MAX_TOKENS} tokens/reply"
    )
    print()
    print(streams_markdown(results, rows))
    print()
    print(f"## {sockets} idle Socket.IO connections on one Relais process, held {HOLD_SECONDS:g} s")
    print()
    print(sockets_markdown(summary))
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "max_tokens": MAX_TOKENS,
            "prompt": PROMPT,
            "scenarios": plan,
            "concurrency": args.concurrency,
            "servers": "child processes (triton: tests.support.triton_standin, model echo, token_delay 0; "
            "relais: gRPC server + bridge on one asyncio loop, model fast = the stand-in), load generator "
            "in the parent process",
            "measurement": "TTFT = request start -> first token text; throughput = output tokens / scenario "
            "wall time. SSE frames carry no token_count: SSE tokens are counted from the received text "
            "(each stand-in token ends with one space) and frames are reported beside them. Each SSE request "
            "streams into a fresh chat created before the clock starts.",
            "cpus": cpus,
            "platform": platform.platform(),
            "versions": common.versions((*common.BASE_PACKAGES, "websockets", "python-socketio", "orjson")),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "sse_vs_grpc": rows,
        "socketio_idle": summary,
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
