"""Issue 14, item 4: bounded per-stream buffering, and memory given back after the load.

A model that streams 8 MiB as fast as it can, read by twenty slow readers (SSE and gRPC) of a
real `relais serve` process: each gets a terminal slow_consumer error once it has fallen a
buffer budget behind, memory stays bounded while they read, and the resident size returns
within 10% of what it was before once they are gone. A reader that keeps up gets all 8 MiB.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from relais.v1 import inference_pb2, inference_pb2_grpc

from server.inference.backend import Chunk, Finish, GenerationRequest
from server.inference.catalogue import Catalogue, ServedModel
from server.inference.config import ModelConfig
from server.inference.service import InferenceService, Limits, SlowConsumer
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.process import RelaisProcess
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

TOKEN = 1024  # bytes per token
TOKENS = 8192  # 8 MiB per stream
BUDGET = 256 * 1024
SLOW_READERS = 10  # per transport
# A slow reader stops reading for this long after its first 64 KiB, then reads what is left.
STALL = 20.0


class Firehose:
    """A backend faster than any reader: `count` chunks of `size` characters, as fast as the loop runs."""

    kind = "firehose"

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size, self.produced = count, size, 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        for index in range(self.count):
            self.produced += 1
            yield Chunk(text="x" * self.size, tokens=1, finish=Finish.LENGTH if index == self.count - 1 else None)
            await asyncio.sleep(0)

    async def start(self) -> None: ...
    async def probe(self) -> bool:
        return True

    async def close(self) -> None: ...


async def until_it_stops(backend: Firehose) -> None:
    """Hold the reader until the backend stops producing. It shares the reader's loop and never
    waits on anything else, so a count unchanged across a sleep means it has stopped (or ended)."""
    while True:
        before = backend.produced
        await asyncio.sleep(0.02)
        if backend.produced == before:
            return


def service(backend: Firehose, budget: int) -> InferenceService:
    config = ModelConfig(key="m", backend="openai", base_url="http://unused", context_window=4096)
    return InferenceService(Catalogue([ServedModel(config, backend)]), Limits(buffer_bytes=budget))


async def test_a_reader_past_the_budget_gets_slow_consumer_after_what_it_read() -> None:
    backend = Firehose(100_000, 100)
    generation = await service(backend, 64 * 1024).start(GenerationRequest(request_id="r", prompt="p"), "m")
    received = 0
    with pytest.raises(SlowConsumer, match="slow_consumer"):
        async for chunk in generation.chunks():
            received += len(chunk.text)
            await until_it_stops(backend)  # slower than the backend, however loaded the machine
    # What was read before the end was delivered, merged, and the backend stopped soon after.
    assert received == len(generation.text) > 0
    assert backend.produced < 2_000


async def test_a_reader_that_keeps_up_gets_everything_merged() -> None:
    backend = Firehose(20_000, 100)
    generation = await service(backend, BUDGET).start(GenerationRequest(request_id="r", prompt="p"), "m")
    chunks = [chunk async for chunk in generation.chunks()]
    assert sum(len(chunk.text) for chunk in chunks) == 2_000_000 and chunks[-1].finish is Finish.LENGTH


# ── The real process ────────────────────────────────────────────────────────────────────────


def big_tokens(prompt: str, max_tokens: int) -> list[str]:
    return [f"{index:08d}".ljust(TOKEN, "x") for index in range(max_tokens)]


@pytest.fixture(scope="module")
def triton() -> Iterator[LiveTriton]:
    live = LiveTriton([StandInModel(name="big", tokens=big_tokens)]).start()
    yield live
    live.close()


def token_of(relais: RelaisProcess) -> str:
    import httpx

    response = httpx.post(
        f"{relais.base_url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    return str(response.json()["access_token"])


async def sse_read(relais: RelaisProcess, token: str, *, stall: float) -> tuple[int, str]:
    """POST /llm/stream on a socket with a small receive buffer, read as fast as it comes but for
    a stall of `stall` seconds after the first 64 KiB; (bytes read, the last event, its start)."""
    body = orjson.dumps({"prompt": "x", "model": "big", "max_tokens": TOKENS})
    head = (
        f"POST /llm/stream HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", relais.http_port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=8 * 1024)
    writer.write(head + body)
    total, window, last = 0, b"", b""
    try:
        while data := await reader.read(4096):
            total += len(data)
            window = window[-512:] + data
            if (found := window.rfind(b"event: ")) >= 0:
                last = window[found : found + 512]
            if stall and total >= 64 * 1024:
                await asyncio.sleep(stall)
                stall = 0
    finally:
        writer.close()
    return total, last.decode(errors="replace")


async def grpc_read(relais: RelaisProcess, token: str, *, stall: float) -> tuple[int, str]:
    """GenerateStream read as fast as it comes but for a stall of `stall` seconds after 64 KiB."""
    # The final event repeats the whole 8 MiB text: more than gRPC's default 4 MiB message limit.
    options = [("grpc.max_receive_message_length", 32 << 20)]
    async with grpc.aio.insecure_channel(relais.grpc_target, options=options) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(prompt="x", model="big", max_tokens=TOKENS)
        total, last = 0, ""
        try:
            async for event in stub.GenerateStream(request, metadata=(("authorization", f"Bearer {token}"),)):
                total += len(event.token.text)
                last = f"{event.WhichOneof('event')}: {event.error.message if event.HasField('error') else ''}"
                if stall and total >= 64 * 1024:
                    await asyncio.sleep(stall)
                    stall = 0
        except grpc.aio.AioRpcError as error:
            return total, f"{last} / status {error.code().name}"
    return total, last


def settled_rss(relais: RelaisProcess, seconds: float = 12.0) -> int:
    """The resident size once the process is idle and has given memory back (it trims every 5 s
    after streams end): the lowest of a few samples."""
    deadline, lowest = time.monotonic() + seconds, relais.rss_bytes()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        lowest = min(lowest, relais.rss_bytes())
    return lowest


async def peak_while(relais: RelaisProcess, work: asyncio.Future[list[tuple[int, str]]]) -> int:
    peak = relais.rss_bytes()
    while not work.done():
        await asyncio.sleep(0.1)
        peak = max(peak, relais.rss_bytes())
    return peak


@pytest.mark.slow
def test_slow_readers_get_slow_consumer_and_memory_comes_back(triton: LiveTriton, tmp_path: Path) -> None:
    models = [{"key": "big", "backend": "triton", "url": triton.url, "model_name": "big", "context_window": 8192}]
    with RelaisProcess(
        tmp_path,
        RELAIS_MODELS=json.dumps(models),
        RELAIS_LLM_MAX_TOKENS=str(TOKENS),
        RELAIS_STREAM_BUFFER_BYTES=str(BUDGET),
    ) as relais:
        token = token_of(relais)

        async def fast() -> list[tuple[int, str]]:
            return list(await asyncio.gather(sse_read(relais, token, stall=0), grpc_read(relais, token, stall=0)))

        # A warm-up that reads everything: nothing is cut, and the process has served 8 MiB streams.
        for total, last in asyncio.run(fast()):
            assert total >= TOKENS * TOKEN and ("final" in last or last.startswith("final")), last[:200]
        baseline = settled_rss(relais)

        async def slow() -> tuple[list[tuple[int, str]], int]:
            readers = [sse_read(relais, token, stall=STALL) for _ in range(SLOW_READERS)]
            readers += [grpc_read(relais, token, stall=STALL) for _ in range(SLOW_READERS)]
            work = asyncio.ensure_future(asyncio.wait_for(asyncio.gather(*readers), 120))
            peak = await peak_while(relais, work)
            return await work, peak

        outcomes, peak = asyncio.run(slow())
        after = settled_rss(relais)

    for _, last in outcomes:
        # Ended early: fewer tokens generated than asked (the error event's usage, or the text read over gRPC).
        assert "slow_consumer" in last, last[:300]
        generated = re.search(r'"completion_tokens":(\d+)', last)
        assert generated is None or int(generated.group(1)) < TOKENS, last[:300]
    assert all(total < TOKENS * TOKEN for total, _ in outcomes[SLOW_READERS:])
    mib = 1 << 20
    # What a slow reader costs at most: its budget of text not taken, and once each the text it was
    # sent (the final message and the stored reply need it), plus what the transport buffers in
    # between hold: about 1.5 times its stream on an idle machine, up to 1.8 on a loaded CI runner
    # (allocator arenas grow with the threads that contend); under 2 (the issue measured three).
    assert (peak - baseline) / (2 * SLOW_READERS) < 2 * TOKENS * TOKEN, (baseline / mib, peak / mib)
    assert after <= baseline * 1.10, (baseline / mib, peak / mib, after / mib)
