"""STREAM_DIALECT_XCORE_EVENTS: xcore's WebSocket, a framing of EventService.Subscribe
(declared on the RPC: `/ws`).

    → connect (credentials in the handshake are optional: Authorization, X-API-Key, ?token=, cookie)
    → {"type": "auth", "token": "Bearer <access token>"}   unless the handshake carried credentials
    ← {"event": "subscribed", "data": {"topics": [...]}, "ts": "2024-01-15T10:30:00Z"}
    ← {"event": "plugin.loaded", "data": {...}, "ts": ...}   each event the caller may see
    → {"type": "subscribe", "events": ["task.completed", "plugin.*"]}   narrows (or widens) the topics
    → {"type": "ping"}  ← {"event": "pong", "data": {}, "ts": ...}

No valid credentials within AUTH_TIMEOUT seconds closes with 4401 (4403 when the caller may not
subscribe); a refused `subscribe` is answered {"event": "error", "data": {"code", "message"}} and
the previous topics stay. When the caller's session ends the server ends the stream and the
socket closes with 4401; when the server goes away, with 1012 (reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from relais.options.v1 import options_pb2
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from bridge.bindings import WebSocketBinding
from bridge.errors import rpc_failure
from bridge.framings.registry import Schema, WebSocketFraming, register
from bridge.handshake import TEMPLATE_KEY, request_id_of, same_origin, socket_metadata
from bridge.live import json_of, open_stream, pump
from bridge.upstream import Upstream

AUTH_TIMEOUT = 5.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RESTART = 1012
MAX_FRAME = 64 * 1024


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _frame(event: str, data: dict[str, Any]) -> str:
    return orjson.dumps({"event": event, "data": data, "ts": _now()}).decode()


def _has_credentials(metadata: list[tuple[str, str]]) -> bool:
    return any(key in ("authorization", "x-api-key", "cookie") for key, _ in metadata)


class _Refused(Exception):
    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


class EventSocket:
    """One /ws connection: a Subscribe stream, reopened when the client changes its topics."""

    def __init__(
        self, websocket: WebSocket, binding: WebSocketBinding, subscribe: Any, metadata: list[tuple[str, str]]
    ) -> None:
        self._websocket = websocket
        self._binding = binding
        self._subscribe = subscribe
        self._metadata = metadata
        self._topics: list[str] = []
        self._stream: asyncio.Task[grpc.StatusCode | None] | None = None

    async def serve(self) -> None:
        try:
            if not _has_credentials(self._metadata):
                await self._await_auth()
            await self._open(self._topics)
            await self._converse()
        except _Refused as refused:
            await self._close(refused.close_code, refused.reason)
        except WebSocketDisconnect:
            pass
        finally:
            if self._stream is not None:
                self._stream.cancel()

    async def _await_auth(self) -> None:
        try:
            message = await asyncio.wait_for(self._receive(), AUTH_TIMEOUT)
        except TimeoutError:
            raise _Refused(CLOSE_UNAUTHENTICATED, "No auth message") from None
        token = message.get("token") if message.get("type") == "auth" else None
        if not isinstance(token, str) or not token.strip() or not token.isascii() or not token.isprintable():
            raise _Refused(CLOSE_UNAUTHENTICATED, 'Expected {"type": "auth", "token": "Bearer <token>"}')
        scheme, _, rest = token.strip().partition(" ")
        value = token.strip() if not rest else (f"Bearer {rest.strip()}" if scheme.lower() == "bearer" else "")
        if not value.startswith("Bearer "):
            value = f"Bearer {value}"
        self._metadata = [*self._metadata, ("authorization", value)]

    async def _open(self, topics: list[str]) -> None:
        """Subscribe to `topics`, replacing the current stream once the new one is live."""
        request = self._binding.request_class(topics=topics)
        try:
            call, first = await open_stream(self._subscribe, request, self._metadata)
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                code = CLOSE_UNAUTHENTICATED if error.code() == grpc.StatusCode.UNAUTHENTICATED else CLOSE_FORBIDDEN
                raise _Refused(code, failure.message[:120]) from None
            if self._stream is None:
                raise _Refused(CLOSE_RESTART, failure.message[:120]) from None
            await self._send(_frame("error", {"code": failure.code, "message": failure.message}))
            return
        if self._stream is not None:
            self._stream.cancel()
        self._topics = topics
        await self._send_event(first)
        self._stream = asyncio.create_task(pump(call, self._send_event))

    async def _send_event(self, message: Message) -> None:
        await self._send(orjson.dumps(json_of(message)).decode())

    async def _converse(self) -> None:
        """Read the client's messages until it leaves or the stream ends."""
        while True:
            assert self._stream is not None
            stream = self._stream
            reading = asyncio.ensure_future(self._receive())
            await asyncio.wait({reading, stream}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await reading
            if stream.done() and stream is self._stream:
                self._ended(stream.result())
            if reading.done() and not reading.cancelled():
                await self._handle(reading.result())

    def _ended(self, code: grpc.StatusCode | None) -> None:
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise _Refused(CLOSE_UNAUTHENTICATED, "Session ended")
        raise _Refused(CLOSE_RESTART, "Event stream ended; reconnect")

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            events = message.get("events", message.get("topics", []))
            if not isinstance(events, list) or not all(isinstance(name, str) for name in events):
                await self._send(_frame("error", {"code": "BAD_REQUEST", "message": "events: a list of topic names"}))
                return
            await self._open(events)
        elif kind == "ping":
            await self._send(_frame("pong", {}))
        elif kind != "auth":  # a repeated auth message changes nothing
            await self._send(_frame("error", {"code": "BAD_REQUEST", "message": f"unknown message type {kind!r}"}))

    async def _receive(self) -> dict[str, Any]:
        text = await self._websocket.receive_text()
        if len(text) > MAX_FRAME:
            raise _Refused(1009, "Message too big")
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"type": None}
        return message if isinstance(message, dict) else {"type": None}

    async def _send(self, text: str) -> None:
        await self._websocket.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._websocket.close(code=code, reason=reason)


class EventSocketRoute(BaseRoute):
    """Accepts first, then authenticates (xcore's clients send their token in a message)."""

    def __init__(self, binding: WebSocketBinding, upstream: Upstream) -> None:
        self.path = binding.path
        self.name = binding.route_name
        self._binding = binding
        self._subscribe = upstream.server_stream(binding)
        self._upstream = upstream

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            return Match.FULL, {TEMPLATE_KEY: self.path}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        metadata = socket_metadata(websocket, request_id_of(scope), self._upstream.forwarding)
        await websocket.accept()
        if "cookie" in websocket.headers and not same_origin(websocket):
            await websocket.close(code=CLOSE_FORBIDDEN, reason="Cross-origin WebSocket with cookies refused")
            return
        await EventSocket(websocket, self._binding, self._subscribe, metadata).serve()

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


@register
class XcoreEvents(WebSocketFraming):
    """xcore's event channel. Send `{"type": "auth", "token": "Bearer <token>"}` first unless
    the handshake carried credentials (`?token=`, `Authorization`, `X-API-Key`, the cookie);
    without valid ones within 5 seconds the socket closes with 4401 (4403: not allowed).
    Then every event the caller may see arrives as `{event, data, ts}`, the first being
    `subscribed`; `{"type": "subscribe", "events": ["plugin.*"]}` changes the topics,
    `{"type": "ping"}` is answered `pong`. Closed with 4401 when the session ends, 1012
    when the server goes away (reconnect)."""

    dialect = options_pb2.STREAM_DIALECT_XCORE_EVENTS
    family = None
    fields = frozenset({"event", "data", "ts"})
    request_fields = frozenset({"topics"})

    def route(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float) -> BaseRoute:
        return EventSocketRoute(binding, upstream)

    def describe(self) -> Schema:
        text = {"type": "string"}
        events = {"type": "array", "items": text, "description": "Topic names, or prefixes such as plugin.*"}
        typed = {"type": "object", "required": ["type"]}
        return {
            "in": {
                "oneOf": [
                    {**typed, "properties": {"type": {"const": "auth"}, "token": text}},
                    {**typed, "properties": {"type": {"const": "subscribe"}, "events": events}},
                    {**typed, "properties": {"type": {"const": "ping"}}},
                ]
            },
            "out": {
                "type": "object",
                "required": ["event", "data", "ts"],
                "properties": {
                    "event": {**text, "description": "The topic; subscribed, pong or error for the channel's own"},
                    "data": {"type": "object"},
                    "ts": {**text, "format": "date-time"},
                },
            },
        }
