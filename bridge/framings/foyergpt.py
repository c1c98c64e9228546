"""STREAM_DIALECT_FOYERGPT_SSE: FoyerGPT's `data: {"token", "message_id"}` … `data: [DONE]`."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from bridge.framings.registry import Schema, SseFraming, event_kind, register
from bridge.framings.sse import DONE_EVENT

TOKEN: Schema = {
    "type": "object",
    "required": ["token", "message_id"],
    "additionalProperties": False,
    "properties": {
        "token": {"type": "string", "description": "Text added since the previous event"},
        "message_id": {"type": "integer", "description": "The stored assistant message being written"},
    },
}
ERROR: Schema = {
    "type": "object",
    "required": ["error", "code"],
    "additionalProperties": False,
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
}


def data(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


@register
class FoyerGptSse(SseFraming):
    dialect = options_pb2.STREAM_DIALECT_FOYERGPT_SSE
    needs = frozenset({"token", "error"})

    def frame(self, event: Message) -> bytes | None:
        kind = event_kind(event)
        if kind == "token":
            token: Any = event.token
            return data({"token": token.text, "message_id": token.message_id})
        if kind == "error":
            error: Any = event.error
            return data({"error": error.message, "code": error.code})
        return None

    def failure(self, body: dict[str, Any]) -> bytes:
        return data({"error": body["detail"], "code": body["code"]})

    def openapi(self, builder: Any, binding: Any) -> Schema:
        frame = {
            "type": "object",
            "required": ["data"],
            "additionalProperties": False,
            "properties": {
                "data": {
                    "type": "string",
                    "not": {"const": "[DONE]"},
                    "contentMediaType": "application/json",
                    "contentSchema": {"oneOf": [TOKEN, ERROR]},
                }
            },
        }
        return {
            "description": 'Server-sent events without names: `data: {"token": "...", "message_id": 5}` per '
            'piece of the reply, then `data: [DONE]`; a reply that fails ends with `data: {"error": "...", '
            '"code": "..."}` instead (no [DONE]: the reply did not finish). Comment lines (`: ping`) keep the '
            "connection alive while the reply waits for the model.",
            "content": {"text/event-stream": {"schema": {"oneOf": [DONE_EVENT, frame]}}},
        }
