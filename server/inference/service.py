"""Generation as the servicers see it: pick the model, start its backend, relay chunks.

`InferenceService.start` returns only once the backend has produced its first chunk,
so an unreachable backend or a bad request fails the call before any event is sent
(and the bridge can still answer with an HTTP status). After that, chunks are relayed
through a small buffer: when the reader is slower than the model, the chunks that
piled up are merged into one (never dropped, never re-sent), so a slow reader costs
fewer messages, not more work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from server.errors import FieldViolation, Unavailable, ValidationFailed
from server.inference.backend import Chunk, Finish, GenerationRequest
from server.inference.catalogue import Catalogue, ServedModel
from server.observability import LLM_ACTIVE_STREAMS, LLM_ITL, LLM_OUTPUT_TOKENS, LLM_REQUESTS, LLM_TTFT

# A reader that takes longer than this to accept a chunk is slower than the model.
SLOW_READER = 0.002


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    default_max_tokens: int = 256
    max_tokens: int = 2048


def merge(first: Chunk, second: Chunk) -> Chunk:
    return Chunk(
        text=first.text + second.text,
        tokens=first.tokens + second.tokens,
        prompt_tokens=second.prompt_tokens or first.prompt_tokens,
        finish=second.finish or first.finish,
    )


class _Coalescer:
    """Reads a chunk stream in its own task; the reader takes everything read so far, merged."""

    def __init__(self, source: AsyncIterator[Chunk]) -> None:
        self._source = source
        self._pending: Chunk | None = None
        self._error: BaseException | None = None
        self._done = False
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for chunk in self._source:
                self._pending = chunk if self._pending is None else merge(self._pending, chunk)
                self._ready.set()
        except Exception as error:
            self._error = error
        finally:
            self._done = True
            self._ready.set()

    async def next(self) -> Chunk | None:
        """The chunks read since the last call, merged; None at the end. Raises the source's error
        once every chunk before it has been taken."""
        while self._pending is None and not self._done:
            self._ready.clear()
            await self._ready.wait()
        chunk, self._pending = self._pending, None
        if chunk is None and self._error is not None:
            raise self._error
        return chunk

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await _aclose(self._source)


class Generation:
    """A started generation: the model chosen, the first chunk in hand."""

    def __init__(
        self,
        model: ServedModel,
        request: GenerationRequest,
        source: AsyncIterator[Chunk],
        first: Chunk,
        *,
        started: float,
        on_unavailable: Callable[[str], None],
    ) -> None:
        self.model = model
        self.request = request
        self.text_parts: list[str] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish: Finish | None = None
        self._source = source
        self._first: Chunk | None = first
        self._started = started
        self._first_token_at: float | None = None
        self._on_unavailable = on_unavailable
        self._labels = (model.key, model.backend.kind)
        # Bound once: a labels() lookup per token is measurable at relay speed.
        self._output_tokens = LLM_OUTPUT_TOKENS.labels(*self._labels)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    async def chunks(self) -> AsyncIterator[Chunk]:
        """The rest of the stream; the generation ends when this iterator is closed.

        While the reader keeps up, chunks are read straight from the backend (no extra task per
        token). Once handing a chunk over takes longer than SLOW_READER seconds, the reader has
        fallen behind: a pump task takes over reading, and what piles up meanwhile is merged.
        """
        LLM_ACTIVE_STREAMS.labels(*self._labels).inc()
        outcome = "cancelled"
        coalescer: _Coalescer | None = None
        try:
            first, self._first = self._first, None
            chunk: Chunk | None = first
            while chunk is not None:
                self._account(chunk)
                handed_at = time.perf_counter()
                yield chunk
                if chunk.finish:
                    break
                if coalescer is None and time.perf_counter() - handed_at > SLOW_READER:
                    coalescer = _Coalescer(self._source)
                chunk = await (coalescer.next() if coalescer is not None else anext(self._source, None))
            if self.finish is None:
                self.finish = Finish.STOP
            outcome = "complete"
        except Unavailable:
            outcome = "error"
            self._on_unavailable(self.model.key)
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            await (coalescer.close() if coalescer is not None else _aclose(self._source))
            LLM_ACTIVE_STREAMS.labels(*self._labels).dec()
            LLM_REQUESTS.labels(*self._labels, outcome).inc()
            if self._first_token_at is not None and self.completion_tokens > 1:
                LLM_ITL.labels(*self._labels).observe(
                    (time.perf_counter() - self._first_token_at) / (self.completion_tokens - 1)
                )

    def _account(self, chunk: Chunk) -> None:
        if chunk.text:
            if self._first_token_at is None:
                self._first_token_at = time.perf_counter()
                LLM_TTFT.labels(*self._labels).observe(self._first_token_at - self._started)
            self.text_parts.append(chunk.text)
        if chunk.tokens:
            self.completion_tokens += chunk.tokens
            self._output_tokens.inc(chunk.tokens)
        self.prompt_tokens = chunk.prompt_tokens or self.prompt_tokens
        self.finish = chunk.finish or self.finish


class InferenceService:
    def __init__(self, catalogue: Catalogue, limits: Limits) -> None:
        self.catalogue = catalogue
        self.limits = limits

    def validate(self, request: GenerationRequest) -> GenerationRequest:
        violations = []
        if not request.prompt.strip() and not any(turn.content.strip() for turn in request.turns):
            violations.append(FieldViolation(field="prompt", message="Give a prompt or at least one message"))
        if request.temperature is not None and not 0 <= request.temperature <= 2:
            violations.append(FieldViolation(field="temperature", message="Must be between 0 and 2"))
        if request.top_p is not None and not 0 < request.top_p <= 1:
            violations.append(FieldViolation(field="top_p", message="Must be in (0, 1]"))
        if request.max_tokens < 1:
            violations.append(FieldViolation(field="max_tokens", message="Must be at least 1"))
        if violations:
            raise ValidationFailed(violations)
        return request

    async def start(self, request: GenerationRequest, model_key: str) -> Generation:
        """Choose the model, start the backend and wait for its first chunk."""
        started = time.perf_counter()
        request = self.validate(request)
        prompt_chars = len(request.prompt) + sum(len(turn.content) for turn in request.turns)
        model = self.catalogue.resolve(model_key, prompt_chars=prompt_chars, max_tokens=request.max_tokens)
        source = model.backend.stream(request)
        try:
            first = await anext(source)
        except StopAsyncIteration:
            first = Chunk(finish=Finish.STOP)
        except BaseException as error:
            if isinstance(error, Unavailable):
                self.catalogue.mark_unavailable(model.key)
            LLM_REQUESTS.labels(model.key, model.backend.kind, "error").inc()
            await _aclose(source)
            raise
        self.catalogue.mark_available(model.key)
        return Generation(
            model, request, source, first, started=started, on_unavailable=self.catalogue.mark_unavailable
        )

    def max_tokens(self, requested: int | None) -> int:
        if requested is None:
            return self.limits.default_max_tokens
        return min(requested, self.limits.max_tokens)


async def _aclose(source: AsyncIterator[Chunk]) -> None:
    with contextlib.suppress(Exception):
        await source.aclose()  # type: ignore[attr-defined]
