"""Server-streaming RPCs as HTTP: server-sent events and WebSocket dialects.

Both framings share the same rules:
- the RPC's first message is awaited before anything is committed, so a call that
  fails at once (bad request, backend down) still gets a proper HTTP status and error
  body (for SSE) or one `error` event (for WebSockets);
- a client that goes away cancels the RPC, and the server cancels the generation.

The event's kind is the name of the set member of the stream message's oneof
(`token`, `status`, `final`, `error` for relais.v1.GenerateEvent).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import grpc
import orjson
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from relais.options.v1 import options_pb2
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bridge.bindings import WebSocketBinding
from bridge.errors import rpc_failure
from bridge.marshal import ParseError, json_to_message, message_to_json
from bridge.upstream import Upstream

log = logging.getLogger("relais.bridge.streams")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@cache
def _oneof_name(descriptor: Descriptor) -> str | None:
    """The stream message's event oneof (the first real one)."""
    for oneof in descriptor.oneofs:
        if not (len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"):
            return str(oneof.name)
    return None


def event_kind(message: Message) -> str:
    oneof = _oneof_name(message.DESCRIPTOR)
    return (message.WhichOneof(oneof) if oneof else None) or "message"


async def first_message(call: Any) -> Message | None:
    """The stream's first message (None if it ended empty); raises the call's error."""
    message = await call.read()
    return None if message is grpc.aio.EOF else message


# ------------------------------------------------------------------------------- SSE


def sse_frame(kind: str, data: bytes, event_id: Any = None) -> bytes:
    head = f"event: {kind}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


def _sequence(message: Message) -> Any:
    return getattr(message, "sequence", None)


class SseFraming:
    """STREAM_DIALECT_SSE: `event: <kind>`, `id: <sequence>`, `data: <message JSON>`."""

    def frame(self, message: Message) -> bytes | None:
        return sse_frame(event_kind(message), orjson.dumps(message_to_json(message)), _sequence(message))

    def failure(self, body: dict[str, Any]) -> bytes:
        return sse_frame("error", orjson.dumps(body))


class FoyerGptFraming(SseFraming):
    """STREAM_DIALECT_FOYERGPT_SSE: `data: {"token": ..., "message_id": ...}` per token event."""

    def frame(self, message: Message) -> bytes | None:
        kind = event_kind(message)
        if kind == "token":
            token = message.token
            return b"data: " + orjson.dumps({"token": token.token, "message_id": token.message_id}) + b"\n\n"
        if kind == "error":
            error = message.error
            return b"data: " + orjson.dumps({"error": error.message, "code": error.code}) + b"\n\n"
        return None

    def failure(self, body: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({"error": body["detail"], "code": body["code"]}) + b"\n\n"


FRAMINGS: dict[int, SseFraming] = {
    options_pb2.STREAM_DIALECT_SSE: SseFraming(),
    options_pb2.STREAM_DIALECT_FOYERGPT_SSE: FoyerGptFraming(),
}


def sse_response(call: Any, first: Message | None, headers: dict[str, str], request_id: str, dialect: int) -> Response:
    """Stream the rest of `call` as server-sent events in `dialect`, ending with `data: [DONE]`."""
    framing = FRAMINGS[dialect]

    async def body() -> AsyncIterator[bytes]:
        error_sent = False
        try:
            message = first
            while message is not None:
                error_sent = error_sent or event_kind(message) == "error"
                frame = framing.frame(message)
                if frame is not None:
                    yield frame
                message = await first_message(call)
            yield b"data: [DONE]\n\n"
        except grpc.aio.AioRpcError as error:
            if not error_sent:
                yield framing.failure(rpc_failure(error).body(request_id))
        finally:
            # The client went away (or the stream ended): stop the RPC, hence the generation.
            call.cancel()

    return StreamingResponse(body(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers})


# ------------------------------------------------------------- WebSocket dialects


def _now_ms() -> int:
    return int(time.time() * 1000)


def _forget(tasks: dict[str, asyncio.Task[None]], req_id: str, _: object) -> None:
    tasks.pop(req_id, None)


class WebSocketError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _JsonSocket:
    """What every WebSocket dialect does the same way: JSON text frames in and out, sends
    serialised (tasks share the socket), request messages read with the bridge's JSON rules."""

    def __init__(self, binding: WebSocketBinding, upstream: Upstream) -> None:
        self._binding = binding
        self._upstream = upstream

    def _attach(self, websocket: WebSocket) -> None:
        self._socket = websocket
        self._send_lock = asyncio.Lock()

    async def _receive(self) -> Any:
        """The next frame's JSON; WebSocketError for a binary frame or malformed JSON."""
        try:
            raw = await self._socket.receive_text()
        except KeyError:  # a binary frame
            raise WebSocketError("BAD_REQUEST", "Send JSON text frames") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise WebSocketError("BAD_REQUEST", f"Malformed JSON: {error}") from None

    def _request_message(self, data: dict[str, Any]) -> Message:
        message = self._binding.request_class()
        try:
            json_to_message(data, message)
        except ParseError as error:
            raise WebSocketError("VALIDATION_ERROR", str(error)) from None
        return message

    async def _send(self, payload: dict[str, Any]) -> None:
        if self._socket.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._socket.send_text(orjson.dumps(payload).decode())


class LocalAssistantSocket(_JsonSocket):
    """The local assistant's WebSocket (`/llm/stream`).

    In:  {"type": "request", "req_id": "1", "source": "demo", "event": "start",
          "payload": {"prompt": "Bonjour", ...request fields}, "ts": 1700000000000}
         {"type": "request", "req_id": "1", "event": "cancel"}
    Out: {"type": "event", "req_id": "1", "source": "llm", "event": "status"|"token"|"end",
          "payload": ..., "ts": ...}   and   {"type": "error", ..., "event": "error",
          "payload": {"code", "message"}}

    Several requests run at once on one socket, told apart by req_id.
    """

    SOURCE = "llm"
    MAX_CONCURRENT = 16

    async def serve(self, websocket: WebSocket, metadata: list[tuple[str, str]]) -> None:
        self._attach(websocket)
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                try:
                    request = self._check(await self._receive())
                except WebSocketError as error:
                    await self._send_error(None, error.code, error.message)
                    continue
                req_id, event = request["req_id"], request.get("event", "start")
                if event == "cancel":
                    task = tasks.get(req_id)
                    if task is not None:
                        task.cancel()
                    continue
                if event != "start":
                    await self._send_error(req_id, "BAD_REQUEST", f"Unknown event {event!r}; use start or cancel")
                elif req_id in tasks:
                    await self._send_error(req_id, "CONFLICT", f"Request {req_id!r} is already running")
                elif len(tasks) >= self.MAX_CONCURRENT:
                    await self._send_error(
                        req_id, "RATE_LIMIT", f"At most {self.MAX_CONCURRENT} requests may run at once per socket"
                    )
                else:
                    try:
                        message = self._payload_message(request.get("payload"))
                    except WebSocketError as error:
                        await self._send_error(req_id, error.code, error.message)
                        continue
                    task = asyncio.create_task(self._run(req_id, message, metadata))
                    tasks[req_id] = task
                    task.add_done_callback(functools.partial(_forget, tasks, req_id))
        except WebSocketDisconnect:
            pass
        finally:
            for task in list(tasks.values()):
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    @staticmethod
    def _check(request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or request.get("type", "request") != "request":
            raise WebSocketError("BAD_REQUEST", 'Expected {"type": "request", "req_id", "event", "payload"}')
        req_id = request.get("req_id")
        if not isinstance(req_id, str | int) or isinstance(req_id, bool) or str(req_id) == "":
            raise WebSocketError("BAD_REQUEST", "req_id is required (a string or number)")
        request["req_id"] = str(req_id)
        return request

    def _payload_message(self, payload: Any) -> Message:
        if isinstance(payload, str):
            payload = {"prompt": payload}
        if not isinstance(payload, dict):
            raise WebSocketError("BAD_REQUEST", 'payload must be an object such as {"prompt": "..."}')
        return self._request_message(payload)

    async def _run(self, req_id: str, message: Message, metadata: list[tuple[str, str]]) -> None:
        call = self._upstream.server_stream(self._binding)(message, metadata=metadata)
        error_sent = False
        try:
            async for event in call:
                kind = event_kind(event)
                if kind == "error":
                    error_sent = True
                    await self._send_error(req_id, event.error.code, event.error.message)
                elif kind == "token":
                    await self._send_event(req_id, "token", event.token.text)
                elif kind == "final":
                    await self._send_event(req_id, "end", message_to_json(event))
                else:
                    await self._send_event(req_id, "status", message_to_json(event))
        except grpc.aio.AioRpcError as error:
            if not error_sent:
                failure = rpc_failure(error)
                await self._send_error(req_id, failure.code, failure.message, status=failure.status)
        except asyncio.CancelledError:
            call.cancel()
            with contextlib.suppress(Exception):
                await self._send_event(req_id, "end", {"finish_reason": "cancelled"})
        finally:
            call.cancel()

    async def _send_event(self, req_id: str, event: str, payload: Any) -> None:
        await self._send(self._envelope("event", req_id, event, payload))

    async def _send_error(self, req_id: str | None, code: str, message: str, status: int | None = None) -> None:
        payload: dict[str, Any] = {"code": code, "message": message}
        if status is not None:
            payload["status"] = status
        await self._send(self._envelope("error", req_id, "error", payload))

    def _envelope(self, kind: str, req_id: str | None, event: str, payload: Any) -> dict[str, Any]:
        return {
            "type": kind,
            "req_id": req_id,
            "source": self.SOURCE,
            "event": event,
            "payload": payload,
            "ts": _now_ms(),
        }


class OrchestratorSocket(_JsonSocket):
    """The AI Orchestrator's WebSocket (`/ws/chat`).

    In:  {"message": "...", "model": "...", "conversation_id": "..."} per text frame; requests
         are answered one after the other, in order.
    Out: {"type": "response", "content": <new text>, "done": false} as the answer grows, then
         {"type": "response", "content": <whole answer>, "done": true, "conversation_id", "model_used",
         "tools_used", "tokens"}; {"type": "error", "content": <why>, "code"}; {"type": "ping"}
         every `ping_interval` seconds.
    """

    MAX_QUEUED = 16

    def __init__(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float) -> None:
        super().__init__(binding, upstream)
        self._ping_interval = ping_interval

    async def serve(self, websocket: WebSocket, metadata: list[tuple[str, str]]) -> None:
        self._attach(websocket)
        queue: asyncio.Queue[Message] = asyncio.Queue(self.MAX_QUEUED)
        helpers = [
            asyncio.create_task(self._answer(queue, metadata)),
            asyncio.create_task(self._keep_alive()),
        ]
        try:
            while True:
                try:
                    request = self._request(await self._receive())
                except WebSocketError as error:
                    await self._error(error.code, error.message)
                    continue
                if queue.full():
                    await self._error("RATE_LIMIT", f"At most {self.MAX_QUEUED} messages may wait per socket")
                    continue
                queue.put_nowait(request)
        except WebSocketDisconnect:
            pass
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _request(self, data: Any) -> Message:
        if not isinstance(data, dict):
            raise WebSocketError("BAD_REQUEST", 'Expected {"message": "...", "model": "...", "conversation_id": "..."}')
        return self._request_message(data)

    async def _answer(self, queue: asyncio.Queue[Message], metadata: list[tuple[str, str]]) -> None:
        while True:
            request = await queue.get()
            call = self._upstream.server_stream(self._binding)(request, metadata=metadata)
            error_sent = False
            try:
                async for event in call:
                    kind = event_kind(event)
                    if kind == "token":
                        await self._send({"type": "response", "content": event.token.text, "done": False})
                    elif kind == "error":
                        error_sent = True
                        await self._error(event.error.code, event.error.message)
                    else:
                        result = message_to_json(getattr(event, kind))
                        await self._send(
                            {"type": "response", **result, "content": result.get("response", ""), "done": True}
                        )
            except grpc.aio.AioRpcError as error:
                if not error_sent:
                    failure = rpc_failure(error)
                    await self._error(failure.code, failure.message, status=failure.status)
            finally:
                call.cancel()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            await self._send({"type": "ping", "ts": _now_ms()})

    async def _error(self, code: str, message: str, status: int | None = None) -> None:
        payload: dict[str, Any] = {"type": "error", "content": message, "code": code}
        if status is not None:
            payload["status"] = status
        await self._send(payload)
