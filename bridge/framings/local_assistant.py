"""STREAM_DIALECT_LOCAL_ASSISTANT_WS: the local assistant's WebSocket (`/llm/stream`).

In:  {"type": "request", "req_id": "1", "source": "demo", "event": "start",
      "payload": {"prompt": "Bonjour", ...request fields}, "ts": 1700000000000}
     {"type": "request", "req_id": "1", "event": "cancel"}
     {"type": "request", "event": "resume", "req_id": <a stream's req_id>, "from_seq": 12}
Out: {"type": "event", "req_id": "1", "source": "llm", "event": "status"|"token"|"end",
      "payload": ..., "ts": ...}   and   {"type": "error", ..., "event": "error",
      "payload": {"code", "message"}}

Several requests run at once on one socket, told apart by req_id. `status` carries the whole
event, whose `req_id` names the stream for a later `resume` (or POST /history/replay): the
events from `from_seq` on, then the live rest, framed as a live request's and tagged with
that req_id. While a request waits for its first event, `status` {"state": "waiting"} is
sent every keep-alive interval.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import grpc
from google.protobuf.message import Message
from relais.options.v1 import options_pb2
from relais.v1 import events_pb2, history_pb2
from starlette.websockets import WebSocket, WebSocketDisconnect

from bridge.bindings import WebSocketBinding
from bridge.errors import rpc_failure
from bridge.framings.registry import Schema, WebSocketFraming, event_kind, register
from bridge.marshal import message_to_json
from bridge.streams import QUIET, JsonSocket, Pump, WebSocketError, now_ms
from bridge.upstream import Upstream

REPLAY = "/relais.v1.HistoryService/Replay"
SOURCE = "llm"


def _forget(tasks: dict[str, asyncio.Task[None]], req_id: str, _: object) -> None:
    tasks.pop(req_id, None)


def check_request(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or request.get("type", "request") != "request":
        raise WebSocketError("BAD_REQUEST", 'Expected {"type": "request", "req_id", "event", "payload"}')
    req_id = request.get("req_id")
    if not isinstance(req_id, str | int) or isinstance(req_id, bool) or str(req_id) == "":
        raise WebSocketError("BAD_REQUEST", "req_id is required (a string or number)")
    request["req_id"] = str(req_id)
    return request


class _Session(JsonSocket):
    """One socket: its running requests, by req_id."""

    MAX_CONCURRENT = 16

    def __init__(self, websocket: WebSocket, binding: WebSocketBinding, upstream: Upstream, keepalive: float) -> None:
        super().__init__(websocket, binding, upstream)
        self.keepalive = keepalive
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def handle(self, request: dict[str, Any], metadata: list[tuple[str, str]]) -> None:
        req_id, event = request["req_id"], request.get("event", "start")
        if event == "cancel":
            if (task := self.tasks.get(req_id)) is not None:
                task.cancel()
            return
        if event not in ("start", "resume"):
            raise WebSocketError("BAD_REQUEST", f"Unknown event {event!r}; use start, cancel or resume")
        if req_id in self.tasks:
            raise WebSocketError("CONFLICT", f"Request {req_id!r} is already running")
        if len(self.tasks) >= self.MAX_CONCURRENT:
            raise WebSocketError("RATE_LIMIT", f"At most {self.MAX_CONCURRENT} requests may run at once per socket")
        call = self._resume(request, metadata) if event == "resume" else self._start(request, metadata)
        task = asyncio.create_task(self.relay(req_id, call))
        self.tasks[req_id] = task
        task.add_done_callback(functools.partial(_forget, self.tasks, req_id))

    def _start(self, request: dict[str, Any], metadata: list[tuple[str, str]]) -> Any:
        payload = request.get("payload")
        if isinstance(payload, str):
            payload = {"prompt": payload}
        if not isinstance(payload, dict):
            raise WebSocketError("BAD_REQUEST", 'payload must be an object such as {"prompt": "..."}')
        message = self.request_message(payload)
        return self.upstream.server_stream(self.binding)(message, metadata=metadata)

    def _resume(self, request: dict[str, Any], metadata: list[tuple[str, str]]) -> Any:
        payload = request.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        from_seq = request.get("from_seq", payload.get("from_seq", 0))
        if not isinstance(from_seq, int) or isinstance(from_seq, bool) or from_seq < 0:
            raise WebSocketError("VALIDATION_ERROR", "from_seq must be an integer, 0 or more")
        replay = self.upstream.stream_method(REPLAY, history_pb2.ReplayRequest, events_pb2.StreamEvent)
        return replay(history_pb2.ReplayRequest(req_id=request["req_id"], from_seq=from_seq), metadata=metadata)

    async def relay(self, req_id: str, call: Any) -> None:
        pump = Pump(call)
        error_sent = started = False
        try:
            while (event := await pump.next(None if started else self.keepalive)) is not None:
                if event is QUIET:
                    await self.send_event(req_id, "status", {"state": "waiting"})
                    continue
                assert isinstance(event, Message)
                started = True
                error_sent = error_sent or event_kind(event) == "error"
                await self.send_frame(req_id, event)
        except grpc.aio.AioRpcError as error:
            if not error_sent:
                failure = rpc_failure(error)
                await self.send_error(req_id, failure.code, failure.message, status=failure.status)
        except asyncio.CancelledError:
            pump.close()
            await self.send_event(req_id, "end", {"finish_reason": "cancelled"})
        finally:
            pump.close()

    async def send_frame(self, req_id: str, event: Any) -> None:
        kind = event_kind(event)
        if kind == "error":
            await self.send_error(req_id, event.error.code, event.error.message)
        elif kind == "token":
            await self.send_event(req_id, "token", event.token.text)
        elif kind == "final":
            await self.send_event(req_id, "end", message_to_json(event))
        elif kind != "ping":
            await self.send_event(req_id, "status", message_to_json(event))

    async def send_event(self, req_id: str, event: str, payload: Any) -> None:
        await self.send(envelope("event", req_id, event, payload))

    async def send_error(self, req_id: str | None, code: str, message: str, status: int | None = None) -> None:
        payload: dict[str, Any] = {"code": code, "message": message}
        if status is not None:
            payload["status"] = status
        await self.send(envelope("error", req_id, "error", payload))


def envelope(kind: str, req_id: str | None, event: str, payload: Any) -> dict[str, Any]:
    return {"type": kind, "req_id": req_id, "source": SOURCE, "event": event, "payload": payload, "ts": now_ms()}


@register
class LocalAssistantWebSocket(WebSocketFraming):
    """The local assistant's socket: several requests at once, told apart by `req_id`. Send
    `{"type": "request", "req_id", "event": "start", "payload": {"prompt", ...}}`; receive
    `{type, req_id, source, event, payload, ts}` events: `status` (whose payload's `req_id`
    names the stream), `token` (the new text), `end` (the final event), `error` {code,
    message}. `{"event": "cancel", "req_id"}` stops a request; `{"event": "resume", "req_id":
    <the stream's>, "from_seq"}` replays a stream from that event on, then follows it live."""

    dialect = options_pb2.STREAM_DIALECT_LOCAL_ASSISTANT_WS
    needs = frozenset({"status", "token", "final", "error"})

    async def serve(
        self,
        websocket: WebSocket,
        binding: WebSocketBinding,
        upstream: Upstream,
        metadata: list[tuple[str, str]],
        *,
        keepalive: float,
    ) -> None:
        session = _Session(websocket, binding, upstream, keepalive)
        try:
            while True:
                request: dict[str, Any] | None = None
                try:
                    request = check_request(await session.receive())
                    await session.handle(request, metadata)
                except WebSocketError as error:
                    await session.send_error(request["req_id"] if request else None, error.code, error.message)
        except WebSocketDisconnect:
            pass
        finally:
            for task in list(session.tasks.values()):
                task.cancel()
            await asyncio.gather(*session.tasks.values(), return_exceptions=True)

    def describe(self) -> Schema:
        text = {"type": "string"}
        request = {
            "type": "object",
            "required": ["type", "req_id", "event"],
            "properties": {
                "type": {"const": "request"},
                "req_id": text,
                "source": text,
                "event": {"enum": ["start", "cancel", "resume"]},
                "payload": {"type": "object", "description": "start: the request fields, e.g. {prompt}"},
                "from_seq": {"type": "integer", "description": "resume: the first event wanted"},
                "ts": {"type": "integer"},
            },
        }
        out = {
            "type": "object",
            "required": ["type", "req_id", "source", "event", "payload", "ts"],
            "properties": {
                "type": {"enum": ["event", "error"]},
                "req_id": text,
                "source": {"const": SOURCE},
                "event": {"enum": ["token", "status", "error", "end"]},
                "payload": {"description": "token: the new text; status/end: the event; error: {code, message}"},
                "ts": {"type": "integer"},
            },
        }
        return {"in": request, "out": out}
