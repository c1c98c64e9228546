"""Any OpenAI-compatible HTTP server: Ollama, vLLM, llama.cpp's server, cloud providers.

Uses the official `openai` client, streaming. `api = "chat"` sends chat turns to
/v1/chat/completions (the server applies its model's chat template); `api =
"completions"` renders them with Relais' completion template and calls
/v1/completions, for base models. Closing the stream closes the HTTP response,
which these servers take as a cancellation.

Every call carries the request's path through Relais servers (`X-Relais-Via`), so a Relais
server that is its own backend refuses a model that resolves to itself (the loop guard,
InferenceService.hop) instead of calling itself forever.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import openai

from server.errors import InvalidArgument, ResourceExhausted
from server.inference.backend import (
    BackendFailed,
    BackendUnavailable,
    Chunk,
    Finish,
    GenerationRequest,
    LoopDetected,
    ProposedCall,
    Role,
    StreamTruncated,
    Turn,
)
from server.inference.prompt import render, stops
from server.inference.toolcalls import new_call_id

Api = Literal["chat", "completions"]
VIA_HEADER = "X-Relais-Via"


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
        if request.via:
            arguments["extra_headers"] = {VIA_HEADER: ", ".join(request.via)}
        if request.json_format is not None and not request.wants_tool_call:
            arguments["extra_body"] = {"response_format": response_format(request)}
        if stop := stops(request) if self.api == "completions" else list(request.stop):
            arguments["stop"] = stop
        if self.api == "chat" and request.tools:
            # Native tool calling: the server's own template and parser for the model's calls.
            arguments["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            choice = request.tool_choice
            arguments["tool_choice"] = (
                choice if choice in ("auto", "none", "required") else {"type": "function", "function": {"name": choice}}
            )
        return arguments

    async def _open(self, request: GenerationRequest) -> Any:
        """The server's streamed response to `request`, on the API this backend speaks."""
        arguments = self._arguments(request)
        try:
            if self.api == "chat":
                messages = [chat_message(turn) for turn in request.turns] or [
                    {"role": Role.USER.value, "content": request.prompt}
                ]
                return await self._client.chat.completions.create(
                    messages=messages,  # type: ignore[arg-type]
                    **arguments,
                )
            return await self._client.completions.create(prompt=render(request), **arguments)
        except openai.APIError as error:
            raise self._failure(error) from None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        response = await self._open(request)
        sent = 0
        prompt_tokens = 0
        ending: Chunk | None = None
        calls = _CallPieces()
        try:
            async for part in response:
                if getattr(part, "usage", None):
                    prompt_tokens = part.usage.prompt_tokens or prompt_tokens
                if not part.choices:
                    continue
                choice = part.choices[0]
                text = (choice.delta.content if self.api == "chat" else choice.text) or ""
                reasoning = _reasoning(choice.delta) if self.api == "chat" else ""
                if self.api == "chat":
                    calls.add(choice.delta)
                sent += 1 if text else 0
                if choice.finish_reason:
                    # Held until the stream ends: the usage chunk, when the server sends one, comes after.
                    finish = Finish.LENGTH if choice.finish_reason == "length" else Finish.STOP
                    ending = Chunk(text=text, tokens=1 if text else 0, finish=finish, reasoning=reasoning)
                elif text or reasoning:
                    yield Chunk(text=text, tokens=1, prompt_tokens=prompt_tokens, reasoning=reasoning)
            if ending is None:
                # A body that ends without a finish_reason was cut short, whatever its framing says.
                raise StreamTruncated(f"{self.base_url} ended the stream after {sent} tokens without a finish_reason")
            ending.prompt_tokens = prompt_tokens
            ending.tool_calls = calls.calls()
            yield ending
        except openai.APIError as error:
            raise self._failure(error) from None
        except BackendUnavailable:
            raise
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
            if error.code == "loop_detected":
                return LoopDetected(f"{where} is this server: {error.message}")
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


def response_format(request: GenerationRequest) -> dict[str, Any]:
    """OpenAI's response_format for the request's JSON format (json_object for any object)."""
    wanted = request.json_format
    assert wanted is not None
    if wanted.schema is None:
        return {"type": "json_object"}
    schema = {"name": wanted.name, "schema": wanted.schema, "strict": wanted.strict}
    return {"type": "json_schema", "json_schema": schema}


def chat_message(turn: Turn) -> dict[str, Any]:
    """A turn as an OpenAI chat message, tool calls and results included."""
    if turn.role is Role.TOOL:
        return {"role": "tool", "tool_call_id": turn.tool_call_id, "content": turn.content}
    message: dict[str, Any] = {"role": turn.role.value, "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            }
            for call in turn.tool_calls
        ]
    return message


def _reasoning(delta: Any) -> str:
    """The reasoning some servers stream beside the answer (vLLM's and DeepSeek's field names)."""
    extra = getattr(delta, "model_extra", None) or {}
    return str(
        getattr(delta, "reasoning_content", None) or extra.get("reasoning_content") or extra.get("reasoning") or ""
    )


class _CallPieces:
    """Streamed tool calls, assembled: each arrives in pieces keyed by its index."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, delta: Any) -> None:
        for piece in getattr(delta, "tool_calls", None) or ():
            call = self._calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = piece.id or call["id"]
            if piece.function is not None:
                call["name"] += piece.function.name or ""
                call["arguments"] += piece.function.arguments or ""

    def calls(self) -> tuple[ProposedCall, ...]:
        proposed = []
        for _, call in sorted(self._calls.items()):
            try:
                arguments = json.loads(call["arguments"] or "{}")
            except json.JSONDecodeError as error:
                arguments, call["name"] = {"_raw": call["arguments"], "_error": error.msg}, ""
            if not isinstance(arguments, dict):
                arguments, call["name"] = {"_raw": call["arguments"]}, ""
            proposed.append(ProposedCall(call_id=call["id"] or new_call_id(), name=call["name"], arguments=arguments))
        return tuple(proposed)
