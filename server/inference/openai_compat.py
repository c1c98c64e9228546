"""Any OpenAI-compatible HTTP server: Ollama, vLLM, llama.cpp's server, cloud providers.

Uses the official `openai` client, streaming. `api = "chat"` sends chat turns to
/v1/chat/completions (the server applies its model's chat template); `api =
"completions"` renders them with Relais' completion template and calls
/v1/completions, for base models. Closing the stream closes the HTTP response,
which these servers take as a cancellation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import openai

from server.errors import InvalidArgument, ResourceExhausted
from server.inference.backend import BackendFailed, BackendUnavailable, Chunk, Finish, GenerationRequest, Role
from server.inference.prompt import render, stops

Api = Literal["chat", "completions"]


class OpenAIBackend:
    kind = "openai"

    def __init__(
        self, *, base_url: str, model_name: str, api_key: str | None, api: Api = "chat", timeout: float = 300.0
    ) -> None:
        self.base_url = base_url
        self.model_name = model_name
        self.api: Api = api
        # No retries: a failure must reach the caller now, as UNAVAILABLE, not in a minute.
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local servers need no key, but the client insists on one.
            api_key=api_key or "unused",
            max_retries=0,
            timeout=openai.Timeout(timeout, connect=5.0),
        )

    async def start(self) -> None:
        """Nothing to load: connections open on first use."""

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.max_tokens,
            "stream": True,
            # Token counts in a last chunk (servers that do not know the option ignore it).
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.top_p is not None:
            arguments["top_p"] = request.top_p
        if request.seed is not None:
            arguments["seed"] = request.seed
        if stop := stops(request) if self.api == "completions" else list(request.stop):
            arguments["stop"] = stop
        return arguments

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        arguments = self._arguments(request)
        try:
            if self.api == "chat":
                turns = request.turns or ()
                messages = [{"role": turn.role.value, "content": turn.content} for turn in turns] or [
                    {"role": Role.USER.value, "content": request.prompt}
                ]
                response: Any = await self._client.chat.completions.create(
                    messages=messages,  # type: ignore[arg-type]
                    **arguments,
                )
            else:
                response = await self._client.completions.create(prompt=render(request), **arguments)
        except openai.APIError as error:
            raise self._failure(error) from None
        sent = 0
        prompt_tokens = 0
        ending: Chunk | None = None
        try:
            async for part in response:
                if getattr(part, "usage", None):
                    prompt_tokens = part.usage.prompt_tokens or prompt_tokens
                if not part.choices:
                    continue
                choice = part.choices[0]
                text = (choice.delta.content if self.api == "chat" else choice.text) or ""
                sent += 1 if text else 0
                if choice.finish_reason:
                    # Held until the stream ends: the usage chunk, when the server sends one, comes after.
                    finish = Finish.LENGTH if choice.finish_reason == "length" else Finish.STOP
                    ending = Chunk(text=text, tokens=1 if text else 0, finish=finish)
                elif text:
                    yield Chunk(text=text, tokens=1, prompt_tokens=prompt_tokens)
            if ending is None:
                ending = Chunk(finish=Finish.LENGTH if sent >= request.max_tokens else Finish.STOP)
            ending.prompt_tokens = prompt_tokens
            yield ending
        except openai.APIError as error:
            raise self._failure(error) from None
        except Exception as error:  # the transport's own errors (httpx2) surface raw mid-stream
            raise BackendUnavailable(f"{self.base_url} broke the stream: {error}") from None
        finally:
            await response.close()

    async def probe(self) -> bool:
        """The server answers its model listing."""
        try:
            await self._client.with_options(timeout=2.0).models.list()
        except openai.APIError:
            return False
        return True

    def _failure(self, error: openai.APIError) -> Exception:
        where = f"OpenAI-compatible server at {self.base_url}"
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            if status in (400, 422):
                return InvalidArgument(f"{where} rejected the request: {error.message}")
            if status == 429:
                return ResourceExhausted(f"{where} is rate limiting: {error.message}")
            if status == 404:
                return BackendUnavailable(f"{where} does not serve model {self.model_name!r}: {error.message}")
            return BackendFailed(f"{where} answered {status}: {error.message}")
        return BackendUnavailable(f"{where} is unreachable: {error.message}")

    async def close(self) -> None:
        await self._client.close()
