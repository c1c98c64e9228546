"""STREAM_DIALECT_SOCKETIO_ROOMS: FoyerGPT's Socket.IO rooms, a framing of LiveService.WatchChat
(declared on the RPC: `/ws/socket.io`) and its companions SetTyping and WatchSession.

    connect      auth {"token": <access token or API key>} (or ?token=, or Authorization)
                 → holds WatchSession: the connection closes when the session ends
    join_chat    {"chat_id": 1} → WatchChat; ack {"ok": true, "chat_id": 1} once the server
                 admits the caller ({"ok": false, "code", "error"} when it does not)
    leave_chat   {"chat_id": 1} → ends that WatchChat
    typing       {"chat_id": 1, "is_typing": true} → SetTyping
    ←new_message each `new_message` of a joined chat's stream (ChatMessage's JSON)
    ←user_typing each `user_typing` not caused by this connection: {"chat_id", "user_id", "is_typing"}
    ←error       {"code", "message"} when the server ends a stream of the connection (SHUTTING_DOWN when
                 it stops, AUTHENTICATION_ERROR when the session ended), just before it disconnects

Every decision (who may connect, join, type) is the server's; rooms span replicas because
the server's streams do (its event bus). Each Socket.IO connection holds its own streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import socketio
from relais.options.v1 import options_pb2
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from bridge.bindings import WebSocketBinding
from bridge.errors import rpc_failure
from bridge.forwarding import Forwarding
from bridge.framings.registry import Schema, WebSocketFraming, companion, event_kind, register
from bridge.handshake import TEMPLATE_KEY
from bridge.live import cancel_all, json_of, open_stream, pump
from bridge.upstream import Upstream

log = logging.getLogger("relais.bridge.rooms")

SESSION = "session"


def _credentials(environ: dict[str, Any], auth: Any, forwarding: Forwarding) -> list[tuple[str, str]]:
    token = auth.get("token") if isinstance(auth, dict) else None
    query = dict(pair.split("=", 1) for pair in environ.get("QUERY_STRING", "").split("&") if "=" in pair)
    token = token or query.get("token")
    metadata: list[tuple[str, str]] = [("x-http-method", "GET")]
    if token and isinstance(token, str) and token.isascii() and token.isprintable():
        metadata.append(("authorization", f"Bearer {token}"))
    elif header := environ.get("HTTP_AUTHORIZATION"):
        metadata.append(("authorization", header))
    # engine.io's environ names every client 127.0.0.1: the ASGI scope has the real peer.
    metadata += forwarding.metadata(environ.get("asgi.scope", {}))
    return metadata


def _chat_id(data: Any) -> int | None:
    value: Any = data.get("chat_id") if isinstance(data, dict) else data
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _refusal(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    failure = rpc_failure(error)
    return {"ok": False, "code": failure.code, "error": failure.message}


class Rooms:
    def __init__(self, upstream: Upstream, binding: WebSocketBinding, *, ping_interval: float = 20.0) -> None:
        # Same-origin only (python-engineio's default): a cross-site page cannot ride a user's session.
        # engine.io pings every `ping_interval` seconds, so a room waiting for a reply stays open
        # behind proxies that close quiet connections.
        self.server = socketio.AsyncServer(async_mode="asgi", logger=False, ping_interval=max(1.0, ping_interval))
        self.app = socketio.ASGIApp(self.server, socketio_path=binding.path.strip("/"))
        self.path = binding.path
        self._binding = binding
        self._watch_chat = upstream.server_stream(binding)
        self._set_typing = upstream.unary_method(*companion(binding.method, "SetTyping"))
        self._watch_session = upstream.stream_method(*companion(binding.method, "WatchSession"))
        self._upstream = upstream
        # Per connection: its streams (the session's, and one per joined chat).
        self._streams: dict[str, dict[Any, asyncio.Task[None]]] = {}
        server = self.server
        server.on("connect", self._connect)
        server.on("disconnect", self._disconnect)
        server.on("join_chat", self._join)
        server.on("leave_chat", self._leave)
        server.on("typing", self._typing)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        metadata = _credentials(environ, auth, self._upstream.forwarding)
        try:
            request = companion(self._binding.method, "WatchSession")[1]()
            call, alive = await open_stream(self._watch_session, request, metadata)
        except grpc.aio.AioRpcError as error:
            refusal = _refusal(error)
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": refusal["code"], "message": refusal["error"]}
            ) from None
        await self.server.save_session(sid, {"metadata": metadata, "user_id": alive.user_id})
        self._streams[sid] = {SESSION: self._hold(sid, call, self._ignore)}

    def _hold(self, sid: str, call: Any, deliver: Callable[[Any], Awaitable[None]]) -> asyncio.Task[None]:
        """Pump a stream for the connection; when the server ends it (the session ended, the
        server went away), the connection closes, and the client's reconnection starts afresh."""

        async def run() -> None:
            code = await pump(call, deliver, lambda error: self._failed(sid, error))
            log.info("live stream of %s ended (%s); disconnecting", sid, code)
            await self.server.disconnect(sid)

        return asyncio.create_task(run(), name=f"socketio-{sid}")

    async def _failed(self, sid: str, error: grpc.aio.AioRpcError) -> None:
        """The connection's terminal event: why the server ended it (SHUTTING_DOWN, the session ended…)."""
        failure = rpc_failure(error)
        await self.server.emit("error", {"code": failure.code, "message": failure.message}, to=sid)

    @staticmethod
    async def _ignore(message: Any) -> None:
        """The session stream carries nothing after its first message."""

    async def _disconnect(self, sid: str, *args: Any) -> None:
        streams = self._streams.pop(sid, {})
        current = asyncio.current_task()
        for task in streams.values():
            if task is not current:
                task.cancel()

    async def _join(self, sid: str, data: Any) -> dict[str, Any]:
        chat_id = _chat_id(data)
        if chat_id is None:
            return {"ok": False, "code": "BAD_REQUEST", "error": 'Expected {"chat_id": <id>}'}
        streams = self._streams.get(sid)
        if streams is None:
            return {"ok": False, "code": "UNAUTHENTICATED", "error": "Not connected"}
        if chat_id not in streams:
            session = await self.server.get_session(sid)
            request = self._binding.request_class(chat_id=chat_id, connection_id=sid)
            try:
                call, _ = await open_stream(self._watch_chat, request, session["metadata"])
            except grpc.aio.AioRpcError as error:
                return _refusal(error)
            if sid not in self._streams or chat_id in streams:  # left, or joined twice at once, meanwhile
                call.cancel()
            else:
                streams[chat_id] = self._hold(sid, call, lambda update: self._relay(sid, update))
        return {"ok": True, "chat_id": chat_id}

    async def _relay(self, sid: str, update: Any) -> None:
        kind = event_kind(update)
        if kind == "new_message":
            await self.server.emit("new_message", json_of(update.new_message), to=sid)
        elif kind == "user_typing" and update.user_typing.connection_id != sid:
            typing = json_of(update.user_typing)
            assert isinstance(typing, dict)
            typing.pop("connection_id", None)
            await self.server.emit("user_typing", typing, to=sid)

    async def _leave(self, sid: str, data: Any) -> dict[str, Any]:
        chat_id = _chat_id(data)
        task = self._streams.get(sid, {}).pop(chat_id, None) if chat_id is not None else None
        if task is not None:
            task.cancel()
        return {"ok": chat_id is not None}

    async def _typing(self, sid: str, data: Any) -> None:
        chat_id = _chat_id(data)
        if chat_id is None or chat_id not in self._streams.get(sid, {}):
            return  # only members of a room may say they are typing in it
        session = await self.server.get_session(sid)
        is_typing = bool(data.get("is_typing", True)) if isinstance(data, dict) else True
        typing = companion(self._binding.method, "SetTyping")[1]
        request = typing(chat_id=chat_id, is_typing=is_typing, connection_id=sid)
        try:
            await self._set_typing(request, metadata=session["metadata"], timeout=10)
        except grpc.aio.AioRpcError as error:
            log.info("typing in chat %s refused: %s", chat_id, error.code())

    async def close(self) -> None:
        for streams in self._streams.values():
            cancel_all(streams)
        self._streams.clear()
        await self.server.shutdown()


class SocketIORoute(BaseRoute):
    """Hands the path (HTTP long-polling and WebSocket) to python-socketio, unchanged."""

    def __init__(self, rooms: Rooms) -> None:
        self.path = rooms.path
        self.name = "socket.io"
        self._rooms = rooms

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] in ("http", "websocket") and scope["path"].rstrip("/") == self.path:
            return Match.FULL, {TEMPLATE_KEY: self.path}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._rooms.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def close(self) -> None:
        """Socket.IO's streams and background tasks (pings, the service task) end with the app."""
        await self._rooms.close()


def _event(name: str, data: Schema, description: str) -> Schema:
    """A Socket.IO event: the packet `42["<name>", <data>]` on the wire."""
    return {
        "type": "object",
        "description": description,
        "required": ["event", "data"],
        "properties": {"event": {"const": name}, "data": data},
    }


@register
class SocketIoRooms(WebSocketFraming):
    """FoyerGPT's Socket.IO rooms (Engine.IO v4: HTTP long-polling or WebSocket, `EIO=4`).
    Connect with `auth: {token}` (or `?token=`, or `Authorization`); `join_chat` {chat_id} is
    acknowledged `{ok, chat_id}` (or `{ok: false, code, error}`), then the room's `new_message`
    and `user_typing` events arrive; `leave_chat` {chat_id}; `typing` {chat_id, is_typing}.
    The connection is closed when the caller's session ends (logout, termination...)."""

    dialect = options_pb2.STREAM_DIALECT_SOCKETIO_ROOMS
    family = "relais.v1.WatchChatResponse"
    needs = frozenset({"watching", "new_message", "user_typing"})
    request_fields = frozenset({"chat_id", "connection_id"})
    companions = frozenset({"SetTyping", "WatchSession"})

    def route(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float) -> BaseRoute:
        return SocketIORoute(Rooms(upstream, binding, ping_interval=ping_interval))

    def http_responses(self) -> dict[str, Schema]:
        text = {"text/plain": {"schema": {"type": "string"}}}
        return {
            "200": {"description": "Engine.IO packets (HTTP long-polling, `transport=polling`)", "content": text},
            "400": {"description": "Not an Engine.IO v4 request (`EIO=4`), or an unknown session", "content": text},
        }

    def describe(self) -> Schema:
        chat: Schema = {"type": "object", "required": ["chat_id"], "properties": {"chat_id": {"type": "integer"}}}
        typing = {
            "type": "object",
            "required": ["chat_id", "user_id", "is_typing"],
            "properties": {
                "chat_id": {"type": "integer"},
                "user_id": {"type": "integer"},
                "is_typing": {"type": "boolean"},
            },
        }
        ack = {
            "type": "object",
            "required": ["ok"],
            "properties": {
                "ok": {"type": "boolean"},
                "chat_id": {"type": "integer"},
                "code": {"type": "string"},
                "error": {"type": "string"},
            },
        }
        typed = {**chat, "properties": {**chat["properties"], "is_typing": {"type": "boolean"}}}
        return {
            "in": {
                "oneOf": [
                    _event("join_chat", chat, "Join a chat's room; acknowledged as `ack` describes"),
                    _event("leave_chat", chat, "Leave a chat's room"),
                    _event("typing", typed, "Tell the room's other members that you are (not) typing"),
                ]
            },
            "out": {
                "oneOf": [
                    _event("new_message", {"$ref": "#/components/schemas/relais.v1.ChatMessage"}, "A message stored"),
                    _event("user_typing", typing, "Another member is (not) typing"),
                ]
            },
            "ack": ack,
        }
