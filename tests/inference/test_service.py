"""InferenceService without a transport: coalescing, first-chunk failures, the router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.errors import InvalidArgument, ValidationFailed
from server.inference.backend import BackendUnavailable, Chunk, Finish, GenerationRequest
from server.inference.catalogue import Catalogue, ServedModel
from server.inference.config import ModelConfig
from server.inference.service import Generation, InferenceService, Limits


class ScriptedBackend:
    """Emits `count` one-token chunks `delay` seconds apart (as fast as the event loop allows by
    default), or fails."""

    kind = "scripted"

    def __init__(self, count: int = 0, *, fail_first: bool = False, delay: float = 0.0) -> None:
        self.count = count
        self.fail_first = fail_first
        self.delay = delay
        self.closed = asyncio.Event()
        self.produced = 0

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        try:
            if self.fail_first:
                raise BackendUnavailable("scripted backend is down")
            for index in range(self.count):
                self.produced += 1
                last = index == self.count - 1
                yield Chunk(text=f"t{index} ", tokens=1, finish=Finish.LENGTH if last else None)
                await asyncio.sleep(self.delay)
        finally:
            self.closed.set()

    async def start(self) -> None: ...
    async def probe(self) -> bool:
        return True

    async def close(self) -> None: ...


def service(*models: tuple[str, ScriptedBackend, int], limits: Limits | None = None) -> InferenceService:
    served = [
        ServedModel(ModelConfig(key=key, backend="openai", base_url="http://unused", context_window=window), backend)
        for key, backend, window in models
    ]
    return InferenceService(Catalogue(served), limits or Limits())


def request(**fields: object) -> GenerationRequest:
    return GenerationRequest(request_id="r", **{"prompt": "hi", **fields})  # type: ignore[arg-type]


async def test_a_slow_reader_gets_merged_deltas_and_every_token() -> None:
    backend = ScriptedBackend(500)
    generation = await service(("m", backend, 4096)).start(request(max_tokens=500), "m")
    chunks = []
    async for chunk in generation.chunks():
        chunks.append(chunk)
        await asyncio.sleep(0.01)  # the reader is slower than the model
    assert "".join(chunk.text for chunk in chunks) == "".join(f"t{i} " for i in range(500))
    assert sum(chunk.tokens for chunk in chunks) == 500 == generation.completion_tokens
    assert len(chunks) < 50  # merged, not one message per token
    assert chunks[-1].finish is Finish.LENGTH


async def test_tokens_closer_together_than_the_interval_share_a_message() -> None:
    backend = ScriptedBackend(300)
    inference = service(("m", backend, 4096), limits=Limits(message_interval=0.05))
    generation = await inference.start(request(max_tokens=300), "m")
    chunks = [chunk async for chunk in generation.chunks()]  # a reader that takes them at once
    assert chunks[0].text == "t0 "  # the first token is never held back
    assert "".join(chunk.text for chunk in chunks) == "".join(f"t{i} " for i in range(300))
    assert sum(chunk.tokens for chunk in chunks) == 300 == generation.completion_tokens
    assert len(chunks) < 100
    assert chunks[-1].finish is Finish.LENGTH


async def test_tokens_further_apart_than_the_interval_each_get_a_message() -> None:
    backend = ScriptedBackend(8, delay=0.05)
    inference = service(("m", backend, 4096), limits=Limits(message_interval=0.005))
    generation = await inference.start(request(max_tokens=8), "m")
    chunks = [chunk async for chunk in generation.chunks()]
    assert [chunk.text for chunk in chunks] == [f"t{i} " for i in range(8)]


async def test_many_streams_share_the_message_budget() -> None:
    """Past the process's message budget, each of N streams sends at most budget / N messages a
    second: tokens 2 ms apart, each a message of its own on a 1 ms interval, come in a few
    messages when ten streams share 100 messages a second (one every 0.1 s each)."""

    async def messages_per_stream(messages_per_second: float) -> list[list[Chunk]]:
        backends = [ScriptedBackend(40, delay=0.002) for _ in range(10)]
        limits = Limits(message_interval=0.001, messages_per_second=messages_per_second)
        inference = service(*((f"m{i}", backend, 4096) for i, backend in enumerate(backends)), limits=limits)
        generations = [await inference.start(request(max_tokens=40), f"m{i}") for i in range(10)]

        async def read(generation: Generation) -> list[Chunk]:
            return [chunk async for chunk in generation.chunks()]

        return await asyncio.gather(*(read(generation) for generation in generations))

    unbudgeted, budgeted = await messages_per_stream(0), await messages_per_stream(100)
    for chunks in (*unbudgeted, *budgeted):
        assert "".join(chunk.text for chunk in chunks) == "".join(f"t{i} " for i in range(40))
        assert chunks[0].text == "t0 " and chunks[-1].finish is Finish.LENGTH
    # About 40 and 3 each on an idle machine; load merges some of the first (a late reader).
    assert max(len(chunks) for chunks in budgeted) < 10
    assert sum(map(len, unbudgeted)) > 3 * sum(map(len, budgeted))


async def test_the_end_of_a_stream_is_not_held_back() -> None:
    backend = ScriptedBackend(5)
    inference = service(("m", backend, 4096), limits=Limits(message_interval=600))
    generation = await inference.start(request(max_tokens=5), "m")

    async def read_all() -> list[Chunk]:
        return [chunk async for chunk in generation.chunks()]

    # A ten-minute interval would hold the last four tokens; the final one releases them.
    chunks = await asyncio.wait_for(read_all(), 30)
    assert [chunk.text for chunk in chunks] == ["t0 ", "t1 t2 t3 t4 "]
    assert chunks[-1].finish is Finish.LENGTH


async def test_a_backend_failure_comes_after_the_tokens_read_before_it() -> None:
    class FailingMidway(ScriptedBackend):
        async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
            for index in range(5):
                yield Chunk(text=f"t{index} ", tokens=1)
            raise BackendUnavailable("lost the backend")

    inference = service(("m", FailingMidway(), 4096), limits=Limits(message_interval=0.05))
    generation = await inference.start(request(), "m")
    received = []
    with pytest.raises(BackendUnavailable, match="lost the backend"):
        async for chunk in generation.chunks():
            received.append(chunk.text)
    assert "".join(received) == "t0 t1 t2 t3 t4 "


async def test_closing_the_reader_closes_the_backend_stream() -> None:
    backend = ScriptedBackend(10_000)
    generation = await service(("m", backend, 4096)).start(request(max_tokens=10_000), "m")
    reader = generation.chunks()
    await anext(reader)
    await reader.aclose()
    await asyncio.wait_for(backend.closed.wait(), 1)
    assert backend.produced < 10_000


async def test_a_backend_that_fails_at_once_fails_start_and_the_router_avoids_it() -> None:
    down, up = ScriptedBackend(fail_first=True), ScriptedBackend(3)
    inference = service(("down", down, 4096), ("up", up, 4096))
    with pytest.raises(BackendUnavailable):
        await inference.start(request(), "down")
    # "auto" would take "down" first (configuration order) but skips it while it cools down.
    generation = await inference.start(request(), "auto")
    assert generation.model.key == "up"


async def test_the_router_takes_the_first_window_that_fits() -> None:
    small, large = ScriptedBackend(1), ScriptedBackend(1)
    inference = service(("small", small, 512), ("large", large, 8192))
    assert (await inference.start(request(max_tokens=100), "auto")).model.key == "small"
    assert (await inference.start(request(prompt="x" * 4000, max_tokens=100), "auto")).model.key == "large"
    # Nothing fits: the largest window, whose backend then reports the overflow.
    assert (await inference.start(request(prompt="x" * 40_000), "auto")).model.key == "large"


async def test_requests_are_validated_before_any_backend_runs() -> None:
    backend = ScriptedBackend(1)
    inference = service(("m", backend, 4096))
    with pytest.raises(ValidationFailed) as caught:
        await inference.start(request(prompt="", temperature=3.0, top_p=0.0), "m")
    assert {v.field for v in caught.value.violations} == {"prompt", "temperature", "top_p"}
    with pytest.raises(InvalidArgument, match="Unknown model 'nope'; valid models: auto, m"):
        await inference.start(request(), "nope")
    assert backend.produced == 0
