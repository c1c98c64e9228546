"""Generation as the servicers see it: pick the model, start its backend, relay chunks.

`InferenceService.start` returns only once the backend has produced its first chunk,
so an unreachable backend or a bad request fails the call before any event is sent
(and the bridge can still answer with an HTTP status).

After the first chunk, a pump task reads the backend while the caller writes, and the
caller takes everything read since its last message, merged into one chunk (never
dropped, never re-sent). Two messages of one stream are at least `Limits.message_interval`
apart: tokens that arrive closer together than that ride in the same message, and the
stream's last chunk releases whatever is held at once. A model slower than one token per
interval (every real model on one stream, at the 5 ms default) sees each token sent the
moment it arrives; a fast backend or a slow reader costs fewer messages instead of a
message per token, on the relay and on every hop after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from server.errors import FieldViolation, Unavailable, ValidationFailed
from server.inference.backend import Chunk, Finish, GenerationRequest
from server.inference.catalogue import Catalogue, ServedModel
from server.observability import LLM_ACTIVE_STREAMS, LLM_ITL, LLM_OUTPUT_TOKENS, LLM_REQUESTS, LLM_TTFT


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    default_max_tokens: int = 256
    max_tokens: int = 2048
    # Seconds between two messages of one stream, at least (0: as fast as the reader takes them).
    message_interval: float = 0.005


def merge(chunks: Sequence[Chunk]) -> Chunk:
    """One chunk saying what `chunks` said, in order."""
    if len(chunks) == 1:
        return chunks[0]
    prompt_tokens = 0
    finish: Finish | None = None
    for chunk in chunks:
        prompt_tokens = chunk.prompt_tokens or prompt_tokens
        finish = chunk.finish or finish
    return Chunk(
        text="".join(chunk.text for chunk in chunks),
        tokens=sum(chunk.tokens for chunk in chunks),
        prompt_tokens=prompt_tokens,
        finish=finish,
    )


class _Coalescer:
    """Reads a chunk stream in its own task; the reader takes everything read so far, merged."""

    def __init__(self, source: AsyncIterator[Chunk]) -> None:
        self._source = source
        self._pending: list[Chunk] = []
        self._error: BaseException | None = None
        self._done = False
        self._ready = asyncio.Event()
        # Set while the reader holds back: resolved early when the stream ends.
        self._holding: asyncio.Future[None] | None = None
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for chunk in self._source:
                self._pending.append(chunk)
                self._ready.set()
                if chunk.finish:
                    self._release()
        except Exception as error:
            self._error = error
        finally:
            self._done = True
            self._ready.set()
            self._release()

    def _release(self) -> None:
        if self._holding is not None and not self._holding.done():
            self._holding.set_result(None)

    async def hold(self, seconds: float) -> None:
        """Let chunks pile up for `seconds`, or until the stream ends: its last words are never held."""
        if self._done or (self._pending and self._pending[-1].finish):
            return
        loop = asyncio.get_running_loop()
        self._holding = loop.create_future()
        timer = loop.call_later(seconds, self._release)
        try:
            await self._holding
        finally:
            timer.cancel()
            self._holding = None

    async def next(self) -> Chunk | None:
        """The chunks read since the last call, merged; None at the end. Raises the source's error
        once every chunk before it has been taken."""
        while not self._pending and not self._done:
            self._ready.clear()
            await self._ready.wait()
        if not self._pending:
            if self._error is not None:
                raise self._error
            return None
        pending, self._pending = self._pending, []
        return merge(pending)

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
        message_interval: float,
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
        self._message_interval = message_interval
        self._labels = (model.key, model.backend.kind)
        # Bound once: a labels() lookup per token is measurable at relay speed.
        self._output_tokens = LLM_OUTPUT_TOKENS.labels(*self._labels)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    async def chunks(self) -> AsyncIterator[Chunk]:
        """The rest of the stream, paced (see the module's docstring); the generation ends when
        this iterator is closed."""
        LLM_ACTIVE_STREAMS.labels(*self._labels).inc()
        outcome = "cancelled"
        coalescer: _Coalescer | None = None
        try:
            first, self._first = self._first, None
            chunk: Chunk | None = first
            while chunk is not None:
                self._account(chunk)
                sent_at = time.perf_counter()
                yield chunk
                if chunk.finish:
                    break
                if coalescer is None:
                    coalescer = _Coalescer(self._source)
                pause = sent_at + self._message_interval - time.perf_counter()
                if pause > 0:
                    await coalescer.hold(pause)
                chunk = await coalescer.next()
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
            model,
            request,
            source,
            first,
            started=started,
            on_unavailable=self.catalogue.mark_unavailable,
            message_interval=self.limits.message_interval,
        )

    def max_tokens(self, requested: int | None) -> int:
        if requested is None:
            return self.limits.default_max_tokens
        return min(requested, self.limits.max_tokens)


async def _aclose(source: AsyncIterator[Chunk]) -> None:
    with contextlib.suppress(Exception):
        await source.aclose()  # type: ignore[attr-defined]
