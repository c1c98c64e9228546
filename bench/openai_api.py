"""OpenAI-compatible streaming versus Relais' own SSE, on the same model and the same server.

    .venv/bin/python -m bench openai            # concurrency 1 and 64, max(100, 10 x concurrency) requests each
    .venv/bin/python -m bench openai --quick    # smoke run

The servers are bench/llm.py's: a Triton stand-in child streaming max_tokens tokens as fast as its
event loop allows (so the model's time does not hide the relay's), and a Relais child (gRPC server
and bridge on one loop) serving it as the model "fast". This process is the load generator.

Targets, all streaming 256 tokens of the same model:

    llm_sse      POST /llm/stream {"prompt"} (InferenceService.GenerateStream, the generic SSE
                 framing): the baseline
    chat_sse     POST /v1/chat/completions {"messages", "stream": true, "stream_options":
                 {"include_usage": true}}: the agent loop, the reply's domain events, the OpenAI
                 chat framing (chat.completion.chunk)
    text_sse     POST /v1/completions {"prompt", "stream": true, ...}: a plain generation, the
                 OpenAI text framing (text_completion chunks)

Each request's tokens are counted from the stream itself (token_count of /llm/stream's token events;
completion_tokens of the OpenAI usage chunk) and must equal max_tokens. Measured as bench/llm.py does
(genai-perf's definitions): TTFT = request start -> first token text; output token throughput =
output tokens / wall time; the Relais child's CPU per 1000 tokens. Reported against llm_sse: the
throughput ratio and the TTFT the OpenAI routes add.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common, llm
from bench.common import ServerProcess

NAME = "openai"
TARGETS = ("llm_sse", "chat_sse", "text_sse")
LABELS = {
    "llm_sse": "POST /llm/stream (Relais SSE)",
    "chat_sse": "POST /v1/chat/completions, stream",
    "text_sse": "POST /v1/completions, stream",
}
BASELINE = "llm_sse"
MAX_TOKENS = llm.MAX_TOKENS


@contextlib.asynccontextmanager
async def openai_stream(
    base_url: str, token: str, concurrency: int, path: str, body: dict[str, Any], text_of: Callable[[Any], str]
) -> AsyncIterator[llm.Stream]:
    """One keep-alive connection per worker; the event stream parsed here, each chunk's JSON read
    (as any OpenAI client does). Tokens are the usage chunk's completion_tokens."""
    import orjson

    payload = orjson.dumps({**body, "model": llm.MODEL_KEY, "max_tokens": MAX_TOKENS, "stream": True,
                            "stream_options": {"include_usage": True}})  # fmt: skip
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:

        async def stream(worker: int) -> llm.Sample:
            started = time.perf_counter()
            ttft = e2e = 0.0
            tokens = messages = 0
            async with clients[worker].stream("POST", path, content=payload, headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        e2e = time.perf_counter() - started
                        continue
                    chunk = orjson.loads(line[6:])
                    if "error" in chunk:
                        raise RuntimeError(f"{path}: stream error {chunk['error']!r:.300}")
                    if chunk["choices"] and text_of(chunk["choices"][0]):
                        if not messages:
                            ttft = time.perf_counter() - started
                        messages += 1
                    if chunk.get("usage"):
                        tokens = int(chunk["usage"]["completion_tokens"])
            if not e2e:
                raise RuntimeError(f"{path}: the stream ended without data: [DONE]")
            return llm._checked(path, llm.Sample(ttft, e2e, tokens, messages), MAX_TOKENS)

        yield stream


def _streamer(target: str, relais: ServerProcess, token: str, concurrency: int) -> Any:
    if target == "llm_sse":
        return llm.sse_stream(relais.base_url, token, concurrency, MAX_TOKENS)
    if target == "chat_sse":
        body = {"messages": [{"role": "user", "content": llm.PROMPT}]}
        return openai_stream(
            relais.base_url, token, concurrency, "/v1/chat/completions", body, lambda c: c["delta"].get("content")
        )
    return openai_stream(relais.base_url, token, concurrency, "/v1/completions", {"prompt": llm.PROMPT},
                         lambda c: c["text"])  # fmt: skip


@dataclass(frozen=True, slots=True)
class Result:
    target: str
    label: str
    concurrency: int
    requests: int
    output_tokens: int
    seconds: float
    output_tokens_per_second: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    e2e_p50_ms: float
    token_messages_per_request: float
    relais_cpu_ms_per_1k_tokens: float


def summarize(target: str, concurrency: int, samples: list[llm.Sample], seconds: float, cpu: float) -> Result:
    tokens = sum(sample.tokens for sample in samples)
    ttft = sorted(sample.ttft * 1000 for sample in samples)
    e2e = sorted(sample.e2e * 1000 for sample in samples)
    return Result(
        target=target,
        label=LABELS[target],
        concurrency=concurrency,
        requests=len(samples),
        output_tokens=tokens,
        seconds=round(seconds, 4),
        output_tokens_per_second=round(tokens / seconds, 1),
        ttft_p50_ms=round(common.percentile(ttft, 50), 3),
        ttft_p99_ms=round(common.percentile(ttft, 99), 3),
        e2e_p50_ms=round(common.percentile(e2e, 50), 3),
        token_messages_per_request=round(statistics.mean(sample.messages for sample in samples), 1),
        relais_cpu_ms_per_1k_tokens=round(cpu * 1e6 / tokens, 2),
    )


async def run_targets(args: argparse.Namespace, servers: dict[str, ServerProcess], password: str) -> list[Result]:
    """Per concurrency: each target's clients opened and warmed up, then rounds in which every
    target streams its share, in alternating order (ABC, CBA...)."""
    relais = servers["relais"]
    token = await llm.login(relais.base_url, password)
    results: list[Result] = []
    for concurrency in args.concurrency:
        requests, warmup = llm.requests_for(args, concurrency), llm.warmup_for(args, concurrency)
        rounds = max(1, min(llm.ROUNDS, requests // concurrency))
        shares = [requests // rounds + (1 if index < requests % rounds else 0) for index in range(rounds)]
        print(f"  c={concurrency}: {requests} requests per target, {rounds} round(s)", file=sys.stderr, flush=True)
        async with contextlib.AsyncExitStack() as stack:
            streams = {}
            for target in TARGETS:
                streams[target] = await stack.enter_async_context(_streamer(target, relais, token, concurrency))
                await llm.drive_streams(streams[target], warmup, concurrency)
            tallies: dict[str, tuple[list[llm.Sample], list[float], list[float]]] = {t: ([], [], []) for t in TARGETS}
            for index, share in enumerate(shares):
                for target in TARGETS if index % 2 == 0 else tuple(reversed(TARGETS)):
                    cpu = relais.cpu_seconds()
                    samples, seconds = await llm.drive_streams(streams[target], share, concurrency)
                    tallies[target][0].extend(samples)
                    tallies[target][1].append(seconds)
                    tallies[target][2].append(relais.cpu_seconds() - cpu)
        for target in TARGETS:
            samples, seconds, cpu = tallies[target]
            result = summarize(target, concurrency, samples, sum(seconds), sum(cpu))
            print(
                f"  {target:<8} c={concurrency:<3} {result.output_tokens_per_second:>9.0f} tok/s  "
                f"TTFT p50 {result.ttft_p50_ms:.2f} ms",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results


def versus_baseline(results: list[Result]) -> list[dict[str, Any]]:
    base = {result.concurrency: result for result in results if result.target == BASELINE}
    rows = []
    for result in results:
        reference = base[result.concurrency]
        if result.target == BASELINE:
            continue
        rows.append(
            {
                "target": result.target,
                "concurrency": result.concurrency,
                "throughput_ratio": round(result.output_tokens_per_second / reference.output_tokens_per_second, 3),
                "added_ttft_p50_ms": round(result.ttft_p50_ms - reference.ttft_p50_ms, 3),
                "added_ttft_p99_ms": round(result.ttft_p99_ms - reference.ttft_p99_ms, 3),
                "cpu_ratio": round(result.relais_cpu_ms_per_1k_tokens / reference.relais_cpu_ms_per_1k_tokens, 3),
            }
        )
    return rows


def markdown(results: list[Result], rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target | conc. | requests | output tok/s | TTFT p50 ms | TTFT p99 ms | e2e p50 ms | token msgs/req "
        "| Relais CPU ms/1k tok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.concurrency} | {r.requests} | {r.output_tokens_per_second:,.0f} | {r.ttft_p50_ms:.2f} "
            f"| {r.ttft_p99_ms:.2f} | {r.e2e_p50_ms:.1f} | {r.token_messages_per_request:.0f} "
            f"| {r.relais_cpu_ms_per_1k_tokens:.0f} |"
        )
    lines += [
        "",
        f"Against {LABELS[BASELINE]} at the same concurrency:",
        "",
        "| OpenAI route / /llm/stream | conc. | output tok/s ratio | added TTFT p50 ms | added TTFT p99 ms "
        "| Relais CPU ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {LABELS[row['target']]} | {row['concurrency']} | {row['throughput_ratio']:.2f} | "
            f"{row['added_ttft_p50_ms']:+.2f} | {row['added_ttft_p99_ms']:+.2f} | {row['cpu_ratio']:.2f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench openai`."""
    args = argparse.Namespace(**vars(args))
    if args.concurrency is None:
        args.concurrency = [1, 64]
    output = common.output_path(args, NAME)
    started = time.monotonic()
    password = f"bench-{secrets.token_urlsafe(24)}-1"
    with (
        tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch,
        llm.children(Path(scratch), password) as servers,
    ):
        results = asyncio.run(run_targets(args, servers, password))
    rows = versus_baseline(results)
    print()
    print(f"## OpenAI-compatible streaming vs /llm/stream: {os.cpu_count()} CPUs, {MAX_TOKENS} tokens/request")
    print()
    print(markdown(results, rows))
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "max_tokens": MAX_TOKENS,
            "prompt": llm.PROMPT,
            "concurrency": args.concurrency,
            "servers": "bench/llm.py's children: the Triton stand-in (one vLLM-convention model, token_delay 0) "
            "and Relais (gRPC server + bridge on one asyncio loop) serving it as 'fast'",
            "measurement": "TTFT = request start -> first token text; output token throughput = output tokens "
            "/ wall time of the target's rounds; Relais CPU from the child's process times",
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "versions": common.versions((*common.BASE_PACKAGES, "tritonclient", "orjson")),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [asdict(result) for result in results],
        "ratios_vs_llm_stream": rows,
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0
