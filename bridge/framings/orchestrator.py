"""The AI Orchestrator's dialects: SSE on /api/chat (`stream: true`) and the /ws/chat WebSocket.

Both answer the same result object, built from the event family's `final` and `usage`:
{"response", "conversation_id", "model_used", "tools_used", "tokens": {"prompt", "completion"}}.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from relais.options.v1 import options_pb2
from starlette.websockets import WebSocket, WebSocketDisconnect

from bridge.bindings import Binding, WebSocketBinding
from bridge.errors import rpc_failure
from bridge.framings.registry import Schema, SseFraming, WebSocketFraming, event_kind, register
from bridge.framings.sse import DONE_EVENT, named_event, sse_frame
from bridge.marshal import message_to_json
from bridge.streams import JsonSocket, WebSocketError, now_ms
from bridge.upstream import Upstream

RESULT: Schema = {
    "type": "object",
    "required": ["response", "conversation_id", "model_used", "tools_used", "tokens"],
    "properties": {
        "response": {"type": "string", "description": "The whole answer"},
        "conversation_id": {"type": "integer", "description": "The conversation, to continue it"},
        "model_used": {"type": "string", "description": "The model that answered (the router's choice for auto)"},
        "tools_used": {"type": "array", "items": {"type": "string"}},
        "tokens": {
            "type": "object",
            "properties": {"prompt": {"type": "integer"}, "completion": {"type": "integer"}},
        },
    },
}
# Agent-loop members and the names both dialects give them.
AGENT_EVENTS = {"think": "think", "plan": "plan", "tool_call": "action", "tool_result": "result"}


def result_body(event: Any) -> dict[str, Any]:
    final, usage = event.final, event.usage
    return {
        "response": final.text,
        "conversation_id": final.chat_id,
        "model_used": final.model,
        "tools_used": list(final.tools_used),
        "tokens": {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens},
    }


def agent_body(kind: str, member: Any) -> dict[str, Any]:
    """An agent-loop event as the Orchestrator documents it: think/plan/result carry `content`,
    action carries `tool` and `params`."""
    body = message_to_json(member)
    assert isinstance(body, dict)
    if kind == "tool_call":
        return {"tool": body.get("tool", ""), "params": body.get("params", {})}
    return {**body, "content": body.get("text", body.get("content", ""))}


@register
class OrchestratorSse(SseFraming):
    """`event: token` {"seq", "token": {"text"}}, agent-loop events, `event: result`
    {"seq", "result": <result>}, then `data: [DONE]`; or `event: error`, without [DONE]. Status events are not sent."""

    dialect = options_pb2.STREAM_DIALECT_ORCHESTRATOR_SSE
    needs = frozenset({"token", "final", "error", *AGENT_EVENTS})

    def frame(self, event: Message) -> bytes | None:
        kind = event_kind(event)
        seq: int = event.seq
        if kind == "token":
            payload: dict[str, Any] = {"seq": seq, "token": {"text": event.token.text}}
        elif kind == "final":
            payload, kind = {"seq": seq, "result": result_body(event)}, "result"
        elif kind == "error":
            payload = {"seq": seq, "error": message_to_json(event.error)}
        elif kind in AGENT_EVENTS:
            payload = {"seq": seq, **agent_body(kind, getattr(event, kind))}
            kind = AGENT_EVENTS[kind] if kind != "tool_result" else "tool_result"
        else:
            return None
        return sse_frame(kind, orjson.dumps(payload), seq)

    def result(self, binding: Binding, event: Message) -> Any:
        return result_body(event) if event_kind(event) == "final" else None

    def openapi(self, builder: Any, binding: Binding) -> Schema:
        token = {"type": "object", "properties": {"seq": {"type": "integer"}, "token": {"type": "object"}}}
        result = {"type": "object", "properties": {"seq": {"type": "integer"}, "result": RESULT}}
        error = {"type": "object", "properties": {"seq": {"type": "integer"}, "error": {"type": "object"}}}
        events = [
            named_event(token, {"const": "token"}),
            named_event(result, {"const": "result"}),
            named_event(error, {"const": "error"}),
            named_event({"type": "object"}, {"enum": ["think", "plan", "action", "tool_result"]}),
        ]
        return {
            "description": f"The result as one JSON body, or server-sent events when `{binding.stream_field}` "
            "is true: `event: token` per piece of the answer, `event: result` with the whole result, then "
            "`data: [DONE]`; `event: error` instead of the result when the answer fails (no [DONE]).",
            "content": {
                "application/json": {"schema": RESULT},
                "text/event-stream": {"schema": {"oneOf": [DONE_EVENT, *events]}},
            },
        }


@register
class OrchestratorWebSocket(WebSocketFraming):
    """/ws/chat. In: {"message", "model", "conversation_id", "tools", "tool_choice"} per text frame,
    answered in order.
    Out: {"type": "token", "content": <new text>} as the answer grows; think/plan/action/result
    from the agent loop; the whole answer ONCE as {"type": "response", "content", "done": true,
    "conversation_id", "model_used", "tools_used", "tokens"}; {"type": "error", "content", "code"};
    {"type": "ping", "ts"} every keep-alive interval."""

    dialect = options_pb2.STREAM_DIALECT_ORCHESTRATOR_WS
    needs = frozenset({"token", "final", "error", *AGENT_EVENTS})
    MAX_QUEUED = 16

    async def serve(
        self,
        websocket: WebSocket,
        binding: WebSocketBinding,
        upstream: Upstream,
        metadata: list[tuple[str, str]],
        *,
        keepalive: float,
    ) -> None:
        socket = JsonSocket(websocket, binding, upstream)
        queue: asyncio.Queue[Message] = asyncio.Queue(self.MAX_QUEUED)
        helpers = [
            asyncio.create_task(self._answer(socket, queue, metadata)),
            asyncio.create_task(self._keep_alive(socket, keepalive)),
        ]
        try:
            while True:
                try:
                    data = await socket.receive()
                    if not isinstance(data, dict):
                        raise WebSocketError("BAD_REQUEST", 'Expected {"message": "...", "model": "..."}')
                    request = socket.request_message(data)
                except WebSocketError as error:
                    await _error(socket, error.code, error.message)
                    continue
                if queue.full():
                    await _error(socket, "RATE_LIMIT", f"At most {self.MAX_QUEUED} messages may wait per socket")
                    continue
                queue.put_nowait(request)
        except WebSocketDisconnect:
            pass
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _answer(self, socket: JsonSocket, queue: asyncio.Queue[Message], metadata: list[tuple[str, str]]) -> None:
        while True:
            request = await queue.get()
            call = socket.upstream.server_stream(socket.binding)(request, metadata=metadata)
            error_sent = False
            try:
                async for event in call:
                    frame = self.frame(event)
                    error_sent = error_sent or (frame is not None and frame["type"] == "error")
                    if frame is not None:
                        await socket.send(frame)
            except grpc.aio.AioRpcError as error:
                if not error_sent:
                    failure = rpc_failure(error)
                    await _error(socket, failure.code, failure.message, status=failure.status)
            finally:
                call.cancel()

    @staticmethod
    def frame(event: Any) -> dict[str, Any] | None:
        kind = event_kind(event)
        if kind == "token":
            return {"type": "token", "content": event.token.text}
        if kind == "final":
            body = result_body(event)
            return {"type": "response", **body, "content": body["response"], "done": True}
        if kind == "error":
            return {"type": "error", "content": event.error.message, "code": event.error.code}
        if kind in AGENT_EVENTS:
            return {"type": AGENT_EVENTS[kind], **agent_body(kind, getattr(event, kind))}
        return None

    @staticmethod
    async def _keep_alive(socket: JsonSocket, interval: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(interval)
                await socket.send({"type": "ping", "ts": now_ms()})

    def describe(self) -> Schema:
        def typed(kind: str, **properties: Schema) -> Schema:
            return {"type": "object", "required": ["type"], "properties": {"type": {"const": kind}, **properties}}

        text = {"type": "string"}
        response = {**RESULT["properties"], "content": text, "done": {"const": True}}
        return {
            "in": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": text,
                    "model": text,
                    "conversation_id": {"type": "integer"},
                    "tools": {"type": "array", "items": text, "description": "Tools the model may call"},
                    "tool_choice": {**text, "description": "auto, none, required or a tool's name"},
                },
            },
            "out": {
                "oneOf": [
                    typed("token", content={**text, "description": "New text of the answer (not the answer)"}),
                    typed("think", content=text),
                    typed("plan", content=text),
                    typed("action", tool=text, params={"type": "object"}),
                    typed("result", content=text),
                    typed("response", **response),
                    typed("error", content=text, code=text),
                    typed("ping", ts={"type": "integer"}),
                ]
            },
        }


async def _error(socket: JsonSocket, code: str, message: str, status: int | None = None) -> None:
    payload: dict[str, Any] = {"type": "error", "content": message, "code": code}
    if status is not None:
        payload["status"] = status
    await socket.send(payload)
