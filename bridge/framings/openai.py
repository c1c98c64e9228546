"""OpenAI's API as framings of the event family: chat completions (STREAM_DIALECT_OPENAI_CHAT)
and legacy completions (STREAM_DIALECT_OPENAI_COMPLETION), streamed or whole.

    stream: true    data: {"id": "chatcmpl-…", "object": "chat.completion.chunk", "created", "model",
                           "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, …}]}
                    data: {… "delta": {"content": "Hel"} …}          (one per token delta)
                    data: {… "delta": {}, "finish_reason": "stop"}
                    data: {… "choices": [], "usage": {…}}           (when the usage field asks)
                    data: [DONE]
    stream: false   {"id", "object": "chat.completion", "created", "model", "choices": [{"index": 0,
                     "message": {"role": "assistant", "content", "refusal": null}, "finish_reason"}],
                     "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}

A stream's framing keeps what its events said (`open` gives each stream its own): the id (from
the stream's req_id), the model (from `status`), and the tool calls not answered by a
`tool_result`. Calls the server ran are answered in the stream and never shown; the others are
the client's, sent with the finish (finish_reason "tool_calls"). Reasoning (`think`) travels as
`reasoning_content`, as vLLM and DeepSeek send it. A stored exchange adds `conversation_id`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from bridge.bindings import Binding
from bridge.errors import http_status, openai_error_body
from bridge.framings.registry import Schema, SseFraming, event_kind, register
from bridge.framings.sse import DONE_EVENT
from bridge.marshal import message_to_json

FINISH_REASONS = ("stop", "length", "tool_calls")
USAGE: Schema = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
TOOL_CALL: Schema = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "index": {"type": "integer", "description": "In chunks: the call's position"},
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "arguments": {"type": "string", "description": "A JSON object, as a string"},
            },
        },
    },
}
ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _plain_numbers(value: Any) -> Any:
    """A Struct's numbers are doubles: integral ones are printed as integers again."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _field(message: Message, path: str) -> Any:
    value: Any = message
    for name in path.split("."):
        value = getattr(value, name)
    return value


def stream_error(event: Any) -> dict[str, object]:
    """A StreamError event in OpenAI's error shape."""
    error = event.error
    code = grpc.StatusCode[error.code] if error.code in grpc.StatusCode.__members__ else grpc.StatusCode.UNKNOWN
    return openai_error_body(status=http_status(code), code=error.code or "error", message=error.message)


class _OpenAIFraming(SseFraming):
    """What both OpenAI framings share: the stream's identity, usage and finish."""

    needs = frozenset({"status", "token", "final", "error"})
    prefix = ""
    chunk_object = ""

    def __init__(self, *, include_usage: bool = False) -> None:
        self.include_usage = include_usage
        self.created = int(time.time())
        self.id = ""
        self.model = ""
        self.chat_id = 0
        self.usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}

    def open(self, binding: Binding, request: Message) -> SseFraming:
        include = bool(binding.usage_field and _field(request, binding.usage_field))
        return type(self)(include_usage=include)

    def observe(self, event: Any) -> str:
        """Note what `event` says about the stream; its kind."""
        if not self.id and event.req_id:
            self.id = self.prefix + event.req_id
        usage = event.usage
        total = usage.prompt_tokens + usage.completion_tokens
        self.usage = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": total,
        }
        kind = event_kind(event)
        if kind == "status":
            self.model = event.status.model or self.model
            self.chat_id = event.status.chat_id or self.chat_id
        elif kind == "final":
            self.model = event.final.model or self.model
            self.chat_id = event.final.chat_id or self.chat_id
        return kind

    def envelope(self, object_name: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": object_name,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }
        if self.chat_id:
            body["conversation_id"] = str(self.chat_id)
        return body

    def chunk(self, choice: dict[str, Any] | None) -> bytes:
        extra = {"usage": None} if self.include_usage else {}
        return data(self.envelope(self.chunk_object, [choice] if choice is not None else [], **extra))

    def usage_chunk(self) -> bytes:
        """The last chunk when the request asked for usage: no choices, the whole usage."""
        if not self.include_usage:
            return b""
        return data(self.envelope(self.chunk_object, [], usage=self.usage))

    def failure(self, body: dict[str, Any]) -> bytes:
        return data(body)

    @staticmethod
    def finish_reason(event: Any) -> str:
        reason = message_to_json(event.final)["finish_reason"]
        return reason if reason in FINISH_REASONS else "stop"


@register
class OpenAIChat(_OpenAIFraming):
    dialect = options_pb2.STREAM_DIALECT_OPENAI_CHAT
    needs = frozenset({"status", "token", "think", "tool_call", "tool_result", "final", "error"})
    prefix = "chatcmpl-"
    chunk_object = "chat.completion.chunk"

    def __init__(self, *, include_usage: bool = False) -> None:
        super().__init__(include_usage=include_usage)
        # Tool calls not (yet) answered by a tool_result, by id, in the order they came.
        self.pending: dict[str, dict[str, Any]] = {}
        self.reasoning: list[str] = []

    def observe(self, event: Any) -> str:
        kind = super().observe(event)
        if kind == "tool_call":
            call = event.tool_call
            arguments = _plain_numbers(MessageToDict(call.params)) if call.HasField("params") else {}
            self.pending[call.call_id] = {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.tool, "arguments": json.dumps(arguments, ensure_ascii=False)},
            }
        elif kind == "tool_result":
            self.pending.pop(event.tool_result.call_id, None)
        elif kind == "think":
            self.reasoning.append(event.think.text)
        return kind

    def client_calls(self, event: Any) -> list[dict[str, Any]]:
        """The calls the reply ends with, for the client to run."""
        if self.finish_reason(event) != "tool_calls":
            return []
        return list(self.pending.values())

    def frame(self, event: Message) -> bytes | None:
        kind = self.observe(event)
        item: Any = event
        if kind == "status":
            return self.chunk(self._choice({"role": "assistant", "content": "", "refusal": None}))
        if kind == "token":
            return self.chunk(self._choice({"content": item.token.text}))
        if kind == "think":
            return self.chunk(self._choice({"reasoning_content": item.think.text}))
        if kind == "error":
            return data(stream_error(item))
        if kind != "final":
            return None
        frames = []
        if calls := self.client_calls(item):
            frames.append(self.chunk(self._choice({"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]})))
        frames.append(self.chunk(self._choice({}, self.finish_reason(item))))
        frames.append(self.usage_chunk())
        return b"".join(frames)

    @staticmethod
    def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def result(self, binding: Binding, event: Message) -> Any:
        item: Any = event
        if self.observe(item) != "final":
            return None
        calls = self.client_calls(item)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": item.final.text or (None if calls else ""),
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason(item)}
        return self.envelope("chat.completion", [choice], usage=self.usage)

    def openapi(self, builder: Any, binding: Binding) -> Schema:
        message = {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"const": "assistant"},
                "content": {"type": ["string", "null"]},
                "refusal": {"type": "null"},
                "tool_calls": {"type": "array", "items": TOOL_CALL},
                "reasoning_content": {"type": "string"},
            },
        }
        delta = {**message, "required": []}
        return _described(
            "chat.completion",
            message_schema={"message": message},
            chunk_schema={"delta": delta},
            what="chat completion",
            binding=binding,
        )


@register
class OpenAICompletion(_OpenAIFraming):
    dialect = options_pb2.STREAM_DIALECT_OPENAI_COMPLETION
    prefix = "cmpl-"
    chunk_object = "text_completion"

    def frame(self, event: Message) -> bytes | None:
        kind = self.observe(event)
        item: Any = event
        if kind == "token":
            return self.chunk(self._choice(item.token.text))
        if kind == "error":
            return data(stream_error(item))
        if kind == "final":
            return self.chunk(self._choice("", self.finish_reason(item))) + self.usage_chunk()
        return None

    @staticmethod
    def _choice(text: str, finish: str | None = None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    def result(self, binding: Binding, event: Message) -> Any:
        item: Any = event
        if self.observe(item) != "final":
            return None
        choice = self._choice(item.final.text, self.finish_reason(item))
        return self.envelope("text_completion", [choice], usage=self.usage)

    def openapi(self, builder: Any, binding: Binding) -> Schema:
        text = {"text": {"type": "string"}}
        return _described("text_completion", message_schema=text, chunk_schema=text, what="completion", binding=binding)


def _described(
    object_name: str, *, message_schema: Schema, chunk_schema: Schema, what: str, binding: Binding
) -> Schema:
    """The OpenAPI response of an OpenAI framing: one object, or its chunks as server-sent events."""

    def body(name: str, choice: Schema, usage: Schema) -> Schema:
        choice_schema = {
            "type": "object",
            "required": ["index", "finish_reason"],
            "properties": {
                "index": {"type": "integer"},
                **choice,
                "logprobs": {"type": "null"},
                "finish_reason": {"enum": [*FINISH_REASONS, None]},
            },
        }
        return {
            "type": "object",
            "required": ["id", "object", "created", "model", "choices"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": name},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "system_fingerprint": {"type": "null"},
                "choices": {"type": "array", "items": choice_schema},
                "usage": usage,
                "conversation_id": {"type": "string", "description": "The conversation keeping the exchange"},
            },
        }

    whole = body(object_name, message_schema, USAGE)
    chunk_name = "chat.completion.chunk" if object_name == "chat.completion" else object_name
    chunk = body(chunk_name, chunk_schema, {"anyOf": [USAGE, {"type": "null"}]})
    frame = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "not": {"const": "[DONE]"},
                "contentMediaType": "application/json",
                "contentSchema": {"oneOf": [chunk, ERROR]},
            }
        },
    }
    return {
        "description": f"One `{object_name}` object, or server-sent events when `{binding.stream_field}` is true: "
        f"`data: <{chunk_name}>` per piece of the {what}, a last one with its finish_reason, one with the usage "
        f"(and no choices) when `{binding.usage_field}` is true, then `data: [DONE]`; a failure after the start "
        'is `data: {"error": {...}}`. Comment lines (`: ping`) keep the connection alive while it waits.',
        "content": {
            "application/json": {"schema": whole},
            "text/event-stream": {"schema": {"oneOf": [DONE_EVENT, frame]}},
        },
    }
