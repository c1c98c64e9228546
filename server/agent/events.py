"""What a reply says as it goes: the domain events the servicers map to relais.v1.StreamEvent.

Each event carries the token counts of the whole reply so far (every model step together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.inference.backend import Finish


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyEvent:
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True, kw_only=True)
class Started(ReplyEvent):
    model: str
    backend: str
    chat_id: int = 0
    user_message_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(ReplyEvent):
    text: str
    tokens: int
    message_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Thought(ReplyEvent):
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned(ReplyEvent):
    text: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled(ReplyEvent):
    call_id: str
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolReturned(ReplyEvent):
    call_id: str
    tool: str
    content: str
    is_error: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished(ReplyEvent):
    text: str
    finish: Finish
    model: str
    tools_used: tuple[str, ...] = ()
    message_id: int = 0
    chat_id: int = 0
