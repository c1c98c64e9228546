"""What every inference backend offers: a stream of text chunks for one request.

Backends know nothing of gRPC or HTTP. They raise domain errors (`Unavailable`
when the server behind them cannot be reached or fails, `InvalidArgument` when the
request cannot be served as asked) and stop generating as soon as their stream is
closed: closing the async iterator is how cancellation reaches them.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from server.errors import Unavailable


class Finish(enum.Enum):
    STOP = "stop"
    LENGTH = "length"


class Role(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    content: str


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


@dataclass(slots=True, kw_only=True)
class Chunk:
    """New text from the backend. The last chunk of a stream carries `finish`."""

    text: str = ""
    tokens: int = 0
    # Known once the backend has read the prompt; 0 when the backend does not say.
    prompt_tokens: int = 0
    finish: Finish | None = None


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
