"""STREAM_DIALECT_SSE: any stream message as `event: <oneof member>`, `id: <seq>`, `data: <JSON>`."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from bridge.framings.registry import Schema, SseFraming, event_kind, event_oneof, register
from bridge.marshal import message_to_json

DONE_EVENT: Schema = {"type": "object", "required": ["data"], "properties": {"data": {"const": "[DONE]"}}}


def sse_frame(kind: str, data: bytes, event_id: Any = None) -> bytes:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


def sequence_of(message: Message) -> Any:
    for name in ("seq", "sequence"):
        if name in message.DESCRIPTOR.fields_by_name:
            return getattr(message, name)
    return None


def named_event(data: Schema, event: Schema | None = None) -> Schema:
    """One server-sent event with an `event:` name and JSON `data:` (before OpenAPI 3.2, a
    text/event-stream `schema` describes each event by its fields)."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": event or {"type": "string"},
            "id": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


@register
class GenericSse(SseFraming):
    dialect = options_pb2.STREAM_DIALECT_SSE
    family = None

    def frame(self, event: Message) -> bytes | None:
        return sse_frame(event_kind(event), orjson.dumps(message_to_json(event)), sequence_of(event))

    def result(self, binding: Any, event: Message) -> Any:
        oneof = event_oneof(event.DESCRIPTOR)
        if oneof and event.WhichOneof(oneof) == binding.result_event:
            return message_to_json(getattr(event, binding.result_event))
        return None

    def openapi(self, builder: Any, binding: Any) -> Schema:
        output = binding.method.output_type
        payload = {"anyOf": [builder.message(output), {"$ref": "#/components/schemas/ErrorBody"}]}
        content: Schema = {"text/event-stream": {"schema": {"oneOf": [DONE_EVENT, named_event(payload)]}}}
        if binding.stream_field:
            result = output.fields_by_name[binding.result_event].message_type
            content["application/json"] = {"schema": builder.message(result)}
            return {
                "description": f"One JSON body, or server-sent events when `{binding.stream_field}` is true",
                "content": content,
            }
        return {
            "description": "Server-sent events: `event: <kind>`, `id: <seq>`, `data: <event JSON>`; then "
            "`data: [DONE]`, or, when the stream fails, `event: error` with the error body and no [DONE]. "
            "Comment lines (`: ping`) keep the connection alive while the stream waits.",
            "content": content,
        }
