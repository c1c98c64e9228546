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

Under load the interval widens: the process sends at most `Limits.messages_per_second`
messages in all, shared by its streams (64 streams: 20 ms apart at the 3,200 default). A
message costs the same (~0.1 ms of CPU through the relay) whatever it carries, and a loaded
process makes every stream's tokens arrive further apart, so with a fixed interval it ends up
sending one message per token exactly when it can least afford it: measured at 64 streams
with the interval alone, 245 messages per 256-token reply and ~160 ms of CPU per 1,000 tokens;
spaced 20 ms apart (what the budget gives 64 streams), 47 and ~74. Tokens are only grouped,
never delayed past the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace

from opentelemetry.trace import Span

from server import tracing
from server.errors import FieldViolation, ResourceExhausted, ShuttingDown, Unavailable, ValidationFailed
from server.inference.admission import Admission, Place
from server.inference.backend import Chunk, Finish, GenerationRequest, LoopDetected, StreamTruncated
from server.inference.catalogue import Catalogue, ServedModel
from server.observability import (
    LLM_ACTIVE_STREAMS,
    LLM_ITL,
    LLM_OUTPUT_TOKENS,
    LLM_PROMPT_TOKENS,
    LLM_REQUESTS,
    LLM_TTFT,
)

# Hops a request may make through OpenAI-compatible backends that are Relais servers.
MAX_HOPS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    default_max_tokens: int = 256
    max_tokens: int = 2048
    # Seconds between two messages of one stream, at least (0: as fast as the reader takes them).
    message_interval: float = 0.005
    # Messages a second, every stream together, beyond which the interval widens (0: never).
    messages_per_second: float = 3200
    # Bytes of text a stream may hold for a reader slower than the model (SlowConsumer beyond).
    buffer_bytes: int = 1 << 20
    # Generations at once, and how many more may wait for their turn (see admission.py).
    max_streams: int = 512
    stream_queue: int = 256


class SlowConsumer(ResourceExhausted):
    """The stream's reader fell further behind the model than the stream's buffer budget."""

    reason = "SLOW_CONSUMER"


class _Pending:
    """Chunks read and not taken yet, merged as they arrive: one buffer whatever their number, so
    what a slow reader costs is the bytes it has not read, not an object per token."""

    __slots__ = ("finish", "first", "prompt_tokens", "size", "text", "tokens")

    def __init__(self) -> None:
        self.first: Chunk | None = None  # the common case: one chunk, passed on as it is
        self.text = bytearray()
        self.tokens = self.prompt_tokens = self.size = 0
        self.finish: Finish | None = None

    def __bool__(self) -> bool:
        return self.first is not None or bool(self.tokens or self.text or self.finish)

    def add(self, chunk: Chunk) -> None:
        if not self:
            self.first = chunk
            self.size = len(chunk.text)
            return
        if self.first is not None:
            self._absorb(self.first)
            self.first = None
        self._absorb(chunk)

    def _absorb(self, chunk: Chunk) -> None:
        self.text += chunk.text.encode()
        self.size = len(self.text)
        self.tokens += chunk.tokens
        self.prompt_tokens = chunk.prompt_tokens or self.prompt_tokens
        self.finish = chunk.finish or self.finish

    def take(self) -> Chunk:
        if self.first is not None:
            return self.first
        return Chunk(text=self.text.decode(), tokens=self.tokens, prompt_tokens=self.prompt_tokens, finish=self.finish)


class _Coalescer:
    """Reads a chunk stream in its own task; the reader takes everything read so far, merged. More
    than `budget` bytes not taken end the stream with SlowConsumer (after what was read)."""

    def __init__(self, source: AsyncIterator[Chunk], budget: int) -> None:
        self._source = source
        self._budget = budget
        self._pending = _Pending()
        self._error: BaseException | None = None
        self._done = False
        self._ready = asyncio.Event()
        # Set while the reader holds back: resolved early when the stream ends.
        self._holding: asyncio.Future[None] | None = None
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for chunk in self._source:
                self._pending.add(chunk)
                self._ready.set()
                if chunk.finish:
                    self._release()
                elif self._pending.size > self._budget:
                    raise SlowConsumer(
                        f"slow_consumer: the reader fell more than {self._budget} bytes behind the model; "
                        "the stream was ended"
                    )
        except Exception as error:
            self._error = self._error or error
        finally:
            self._done = True
            self._ready.set()
            self._release()

    def _release(self) -> None:
        if self._holding is not None and not self._holding.done():
            self._holding.set_result(None)

    def interrupt(self, error: BaseException) -> None:
        """Stop reading the backend: what was read is still taken, then `error` is raised."""
        self._task.cancel()
        self._error = error
        self._done = True
        self._ready.set()
        self._release()

    async def hold(self, seconds: float) -> None:
        """Let chunks pile up for `seconds`, or until the stream ends: its last words are never held."""
        if self._done or self._pending.finish or (self._pending.first and self._pending.first.finish):
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
        pending, self._pending = self._pending, _Pending()
        return pending.take()

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
        messages_per_second: float = 0,
        buffer_bytes: int = 1 << 20,
        live: set[Generation] | None = None,
        on_end: Callable[[], None] = lambda: None,
        place: Place | None = None,
        span: Span | None = None,
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
        self._messages_per_second = messages_per_second
        self._buffer_bytes = buffer_bytes
        self._labels = (model.key, model.backend.kind)
        self._span = span  # `llm.generate`, ended with the stream (None when tracing is off)
        # Bound once: a labels() lookup per token is measurable at relay speed.
        self._output_tokens = LLM_OUTPUT_TOKENS.labels(*self._labels)
        # The service's generations being read, which a shutdown ends (see interrupt).
        self._live = live if live is not None else set()
        self._on_end = on_end
        # Its admission (server/inference/admission.py), given back when it ends.
        self.place = place or Place(None)
        self._interrupted: BaseException | None = None
        self._coalescer: _Coalescer | None = None

    def interrupt(self, error: BaseException) -> None:
        """End the stream with `error` (after the text already read): raised by chunks() at once,
        or as soon as its reader takes the next chunk."""
        self._interrupted = error
        if self._coalescer is not None:
            self._coalescer.interrupt(error)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def partial_text(self, error: BaseException) -> str:
        """The text an error event repeats: all of it, except to a slow consumer, which received
        every part already and is ended precisely so as not to be sent megabytes it cannot take."""
        return "" if isinstance(error, SlowConsumer) else self.text

    async def chunks(self) -> AsyncGenerator[Chunk, None]:
        """The rest of the stream, paced (see the module's docstring); the generation ends when
        this iterator is closed."""
        LLM_ACTIVE_STREAMS.labels(*self._labels).inc()
        self._live.add(self)
        outcome = "cancelled"
        coalescer: _Coalescer | None = None
        failure: BaseException | None = None
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
                    coalescer = self._start_coalescer()
                pause = sent_at + self._spacing() - time.perf_counter()
                if pause > 0:
                    await coalescer.hold(pause)
                chunk = await coalescer.next()
            if self.finish is None:
                raise self._truncated()
            outcome = "complete"
        except ShuttingDown:
            raise  # not the backend's fault: counted as cancelled
        except Unavailable as error:
            outcome, failure = "error", error
            self._on_unavailable(self.model.key)
            raise
        except Exception as error:
            outcome, failure = "error", error
            raise
        finally:
            await self._end(outcome, failure, coalescer)

    def _spacing(self) -> float:
        """Seconds to the next message: the interval, or this stream's share of the process's
        message budget when many streams run (see the module's docstring)."""
        if not self._messages_per_second:
            return self._message_interval
        return max(self._message_interval, len(self._live) / self._messages_per_second)

    def _start_coalescer(self) -> _Coalescer:
        """Past the first chunk (already in hand), the backend is read in a task of its own."""
        if self._interrupted is not None:
            raise self._interrupted
        coalescer = self._coalescer = _Coalescer(self._source, self._buffer_bytes)
        return coalescer

    def _truncated(self) -> StreamTruncated:
        # Every backend marks its last chunk; a stream without one was cut short.
        return StreamTruncated(
            f"Model {self.model.key!r} ended its stream after {self.completion_tokens} tokens without its end marker"
        )

    async def _end(self, outcome: str, failure: BaseException | None, coalescer: _Coalescer | None) -> None:
        """Give back what the stream held (its place, its backend) and record how it went."""
        self._live.discard(self)
        self.place.release()
        self._on_end()
        await (coalescer.close() if coalescer is not None else _aclose(self._source))
        LLM_ACTIVE_STREAMS.labels(*self._labels).dec()
        LLM_REQUESTS.labels(*self._labels, outcome).inc()
        LLM_PROMPT_TOKENS.labels(*self._labels).inc(self.prompt_tokens)
        usage: dict[str, str | int | float] = {
            "gen_ai.usage.input_tokens": self.prompt_tokens,
            "gen_ai.usage.output_tokens": self.completion_tokens,
            "relais.outcome": outcome,
        }
        tracing.end_span(self._span, error=failure, **usage)
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
        # Generations being read now, and how many ended so far.
        self._live: set[Generation] = set()
        self.finished = 0
        self.admission = Admission(limits.max_streams, limits.stream_queue)
        # Names this server on a request's path (GenerationRequest.via), for the loop guard.
        self.instance = secrets.token_hex(6)

    @property
    def streaming(self) -> int:
        return len(self._live)

    def _ended(self) -> None:
        self.finished += 1

    def interrupt(self, error: BaseException) -> int:
        """End every generation being read with `error` (a shutdown); how many."""
        live = list(self._live)
        for generation in live:
            generation.interrupt(error)
        return len(live)

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

    async def start(self, request: GenerationRequest, model: ServedModel | str) -> Generation:
        """Start the backend of `model` (a key is resolved here; a reply resolves its model once
        and passes it to every step) and wait for its first chunk."""
        started = time.perf_counter()
        request = self.validate(request)
        if isinstance(model, str):
            model = self.resolve(request, model)
        request = self.hop(request, model)
        place = await self.admission.enter(wait=request.on_queued is not None, on_position=request.on_queued)
        span = tracing.start_span(
            "llm.generate",
            **{"gen_ai.request.model": model.key, "gen_ai.system": model.backend.kind},
            **{"gen_ai.request.max_tokens": request.max_tokens},
        )
        source = model.backend.stream(request)
        first = await self._first_chunk(model, source, span, place)
        self.catalogue.mark_available(model.key)
        return Generation(
            model,
            request,
            source,
            first,
            started=started,
            on_unavailable=self.catalogue.mark_unavailable,
            message_interval=self.limits.message_interval,
            messages_per_second=self.limits.messages_per_second,
            buffer_bytes=self.limits.buffer_bytes,
            live=self._live,
            on_end=self._ended,
            place=place,
            span=span,
        )

    async def _first_chunk(
        self, model: ServedModel, source: AsyncIterator[Chunk], span: Span | None, place: Place
    ) -> Chunk:
        """The backend's first chunk; when there is none, what was started for it is undone."""
        try:
            # The backend's own calls (HTTP, gRPC, the local queue) happen as this span's children.
            with tracing.activate(span):
                first = await anext(source, None)
            if first is None:
                raise StreamTruncated(f"Model {model.key!r} ended its stream before any output, without its end marker")
        except BaseException as error:
            if isinstance(error, Unavailable):
                self.catalogue.mark_unavailable(model.key)
            LLM_REQUESTS.labels(model.key, model.backend.kind, "error").inc()
            tracing.end_span(span, error=error)
            await _aclose(source)
            place.release()
            raise
        return first

    def resolve(self, request: GenerationRequest, key: str) -> ServedModel:
        """The model serving `key` for this request (the router weighs its prompt, and its tools)."""
        prompt_chars = len(request.prompt) + sum(len(turn.content) for turn in request.turns)
        return self.catalogue.resolve(
            key, prompt_chars=prompt_chars, max_tokens=request.max_tokens, needs_tools=request.wants_tool_call
        )

    async def start_queued(
        self, request: GenerationRequest, model_key: ServedModel | str
    ) -> AsyncIterator[int | Generation]:
        """`start`, for a caller that can be told its place while it waits for its turn: the places
        (1: next), as they change, then the started Generation."""
        places: asyncio.Queue[int] = asyncio.Queue()
        starting = asyncio.ensure_future(self.start(replace(request, on_queued=places.put_nowait), model_key))
        try:
            while not starting.done():
                place = asyncio.ensure_future(places.get())
                await asyncio.wait({starting, place}, return_when=asyncio.FIRST_COMPLETED)
                if place.done():
                    yield place.result()
                else:
                    place.cancel()
            yield starting.result()
        finally:
            if not starting.done():  # the caller left while waiting
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting

    def hop(self, request: GenerationRequest, model: ServedModel) -> GenerationRequest:
        """The request as its backend sends it on, this hop added to its path (an OpenAI-compatible
        backend passes the path in X-Relais-Via). A model already on the path is a loop: Relais
        reached itself through such a backend and would call itself forever."""
        hop = f"{self.instance}:{model.key}"
        if hop in request.via:
            raise LoopDetected(
                f"Model {model.key!r} resolves to itself: this server reached itself through an "
                f"OpenAI-compatible backend (path: {' → '.join((*request.via, hop))})"
            )
        if len(request.via) >= MAX_HOPS:
            raise LoopDetected(f"The request went through {len(request.via)} Relais servers; at most {MAX_HOPS}")
        return replace(request, via=(*request.via, hop))

    def max_tokens(self, requested: int | None) -> int:
        if requested is None:
            return self.limits.default_max_tokens
        return min(requested, self.limits.max_tokens)


async def _aclose(source: AsyncIterator[Chunk]) -> None:
    with contextlib.suppress(Exception):
        await source.aclose()  # type: ignore[attr-defined]
