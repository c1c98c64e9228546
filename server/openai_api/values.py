"""The OpenAI routes' requests, as the service reads them (the servicer builds them from protos)."""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import NotFound
from server.inference.backend import JsonFormat, ToolSpec, Turn

AGENT_PREFIX = "agent:"
# The conversation a request asks to keep its exchange in: none, a new one, or a chat's id.
NOT_STORED = ""
NEW_CONVERSATION = "new"


class ModelNotFound(NotFound):
    """OpenAI's 404 `model_not_found`."""

    reason = "MODEL_NOT_FOUND"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """What a request says about generation; None: the backend's (or the agent's) default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """POST /v1/chat/completions: the conversation (system turns included, in order) and how to
    answer it."""

    model: str
    turns: tuple[Turn, ...]
    sampling: Sampling = Sampling()
    # Function tools the client runs; Relais tools (names) the server runs.
    client_tools: tuple[ToolSpec, ...] = ()
    relais_tools: tuple[str, ...] = ()
    # "" (auto with tools, none without), "auto", "none", "required" or a tool's name.
    tool_choice: str = ""
    json_format: JsonFormat | None = None
    # NOT_STORED, NEW_CONVERSATION or the id of a conversation of the caller's.
    conversation: str = NOT_STORED
    # The hops the request already made through Relais servers (X-Relais-Via).
    via: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRequest:
    """POST /v1/completions: a plain prompt."""

    model: str
    prompt: str
    sampling: Sampling = Sampling()
    echo: bool = False
    via: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelEntry:
    """One model of /v1/models."""

    id: str
    created: int
    owned_by: str
