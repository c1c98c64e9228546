"""What every inference backend offers: a stream of text chunks for one request.

Backends know nothing of gRPC or HTTP. They raise domain errors (`Unavailable`
when the server behind them cannot be reached or fails, `InvalidArgument` when the
request cannot be served as asked) and stop generating as soon as their stream is
closed: closing the async iterator is how cancellation reaches them.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.errors import InvalidArgument, Unavailable


class Finish(enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    # The model called tools the client runs (the agent loop ends the reply with the calls).
    TOOL_CALLS = "tool_calls"


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    # A tool's result, answering the assistant turn's call of the same id.
    TOOL = "tool"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, its arguments' JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposedCall:
    """A tool call the model proposed (not yet checked against the tool's schema)."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonFormat:
    """The answer must be JSON: any object (OpenAI's json_object), or JSON matching `schema`
    (json_schema). Backends constrain the decoding (llama.cpp's grammar, vLLM's guided decoding)
    or pass it on (OpenAI-compatible servers' response_format)."""

    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = False

    @property
    def json_schema(self) -> dict[str, Any]:
        return self.schema if self.schema is not None else {"type": "object"}


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    content: str
    # An assistant turn's tool calls; a tool turn's call id and tool.
    tool_calls: tuple[ProposedCall, ...] = ()
    tool_call_id: str = ""
    tool_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationRequest:
    """One generation, validated: either `prompt` or `turns` is set."""

    request_id: str
    prompt: str = ""
    turns: tuple[Turn, ...] = ()
    max_tokens: int = 256
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Who asked: the local backend queues requests fairly between callers.
    caller: str = ""
    # Tools offered, and "auto" (the model may call one), "required" (it must) or a tool's name
    # (that one); "none" or no tools: a plain answer.
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "none"
    # Constrain a prompted tool call to the tool-call JSON Schema (llama.cpp's grammar, vLLM's
    # structured output); off only to measure what the constraint is worth.
    constrain_tool_calls: bool = True
    # Told the request's place when it has to wait for its turn (admission, a local model's slots);
    # None: the caller cannot be told, and a request that would wait is refused instead.
    on_queued: Callable[[int], None] | None = field(default=None, compare=False)
    # The answer's shape when it must be JSON (tool-call steps keep the tool-call schema).
    json_format: JsonFormat | None = None
    # The hops the request made through Relais' OpenAI-compatible backends ("<instance>:<model
    # key>", the X-Relais-Via header): the loop guard refuses a model already on the path.
    via: tuple[str, ...] = ()

    @property
    def wants_tool_call(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


@dataclass(slots=True, kw_only=True)
class Chunk:
    """New text from the backend. The last chunk of a stream carries `finish`."""

    text: str = ""
    tokens: int = 0
    # Known once the backend has read the prompt; 0 when the backend does not say.
    prompt_tokens: int = 0
    finish: Finish | None = None
    # Tool calls the model made (on the last chunk of a step), and reasoning it showed.
    tool_calls: tuple[ProposedCall, ...] = ()
    reasoning: str = ""


class Backend(Protocol):
    """An inference server (or engine) serving one configured model."""

    # "local", "triton" or "openai": the metrics and the catalogue label.
    kind: str

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Chunks of the completion; the last one has `finish` set."""
        ...

    async def start(self) -> None:
        """Prepare (load weights, open channels) without blocking the event loop for long."""

    async def probe(self) -> bool:
        """Whether the backend can serve now (the health report's inference check)."""
        ...

    async def close(self) -> None:
        """Release what `start` and `stream` opened."""


class BackendUnavailable(Unavailable):
    """The backend cannot be reached, or it failed while generating."""

    reason = "BACKEND_UNAVAILABLE"


class BackendFailed(Unavailable):
    """The backend answered with an error while generating."""

    reason = "BACKEND_ERROR"


class StreamTruncated(BackendUnavailable):
    """The backend's stream ended without its own end marker (OpenAI's finish_reason, Triton's
    triton_final_response): whatever its framing said, the answer was cut short."""

    reason = "BACKEND_TRUNCATED"


class LoopDetected(InvalidArgument):
    """The request came back to a model already on its path (Relais reaching itself through an
    OpenAI-compatible backend), or made too many hops."""

    reason = "LOOP_DETECTED"
