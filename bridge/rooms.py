"""FoyerGPT's Socket.IO endpoint, /ws/socket.io: chat rooms for live messages and typing.

    connect      auth {"token": <access token or API key>} (or ?token=, or Authorization)
    join_chat    {"chat_id": 1} → ack {"ok": true} when the caller may read the chat
    leave_chat   {"chat_id": 1}
    typing       {"chat_id": 1, "is_typing": true} → "user_typing" to the room's other members
    ←new_message every message stored in a joined chat, whichever route stored it

Whether a caller may read a chat is the server's decision: joining calls ChatService.GetChat
with the caller's credentials. Rooms span processes through Redis when it is configured.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import socketio
from relais.v1 import chat_pb2
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from bridge.errors import rpc_failure
from bridge.upstream import Upstream
from server.chats.events import CHANNEL, room_of, serve_locally

log = logging.getLogger("relais.bridge.rooms")

PATH = "/ws/socket.io"
GET_CHAT = "/relais.v1.ChatService/GetChat"


def _credentials(environ: dict[str, Any], auth: Any) -> list[tuple[str, str]]:
    token = auth.get("token") if isinstance(auth, dict) else None
    query = dict(pair.split("=", 1) for pair in environ.get("QUERY_STRING", "").split("&") if "=" in pair)
    token = token or query.get("token")
    metadata: list[tuple[str, str]] = [("x-http-method", "GET")]
    if token and isinstance(token, str) and token.isascii() and token.isprintable():
        metadata.append(("authorization", f"Bearer {token}"))
    elif header := environ.get("HTTP_AUTHORIZATION"):
        metadata.append(("authorization", header))
    if address := environ.get("REMOTE_ADDR"):
        metadata.append(("x-forwarded-for", address))
    return metadata


def _chat_id(data: Any) -> int | None:
    value: Any = data.get("chat_id") if isinstance(data, dict) else data
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Rooms:
    def __init__(self, upstream: Upstream, *, redis_url: str | None) -> None:
        manager = socketio.AsyncRedisManager(redis_url, channel=CHANNEL) if redis_url else None
        # Same-origin only (python-engineio's default): a cross-site page cannot ride a user's session.
        self.server = socketio.AsyncServer(async_mode="asgi", client_manager=manager, logger=False)
        if manager is None:
            serve_locally(self.server)
        self.app = socketio.ASGIApp(self.server, socketio_path=PATH.strip("/"))
        self._upstream = upstream
        server = self.server
        server.on("connect", self._connect)
        server.on("join_chat", self._join)
        server.on("leave_chat", self._leave)
        server.on("typing", self._typing)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        metadata = _credentials(environ, auth)
        try:
            who = await self._upstream.check_access(GET_CHAT, metadata)
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            refusal = {"code": failure.code, "message": failure.message}
            raise socketio.exceptions.ConnectionRefusedError(refusal) from None
        await self.server.save_session(sid, {"metadata": metadata, "user_id": who.subject})

    async def _join(self, sid: str, data: Any) -> dict[str, Any]:
        chat_id = _chat_id(data)
        if chat_id is None:
            return {"ok": False, "code": "BAD_REQUEST", "error": 'Expected {"chat_id": <id>}'}
        session = await self.server.get_session(sid)
        try:
            # Looked up per call, like every bridge call: the channel is created lazily on the serving loop.
            get_chat = self._upstream.unary_method(GET_CHAT, chat_pb2.GetChatRequest, chat_pb2.Chat)
            await get_chat(chat_pb2.GetChatRequest(chat_id=chat_id), metadata=session["metadata"], timeout=10)
        except grpc.aio.AioRpcError as error:
            failure = rpc_failure(error)
            return {"ok": False, "code": failure.code, "error": failure.message}
        await self.server.enter_room(sid, room_of(chat_id))
        return {"ok": True, "chat_id": chat_id}

    async def _leave(self, sid: str, data: Any) -> dict[str, Any]:
        chat_id = _chat_id(data)
        if chat_id is not None:
            await self.server.leave_room(sid, room_of(chat_id))
        return {"ok": chat_id is not None}

    async def _typing(self, sid: str, data: Any) -> None:
        chat_id = _chat_id(data)
        if chat_id is None or room_of(chat_id) not in self.server.rooms(sid):
            return  # only members of a room may say they are typing in it
        session = await self.server.get_session(sid)
        is_typing = bool(data.get("is_typing", True)) if isinstance(data, dict) else True
        event = {"chat_id": chat_id, "user_id": session["user_id"], "is_typing": is_typing}
        await self.server.emit("user_typing", event, room=room_of(chat_id), skip_sid=sid)


class SocketIORoute(BaseRoute):
    """Hands /ws/socket.io (HTTP long-polling and WebSocket) to python-socketio, path unchanged."""

    def __init__(self, rooms: Rooms) -> None:
        self.path = PATH
        self.name = "socket.io"
        self._app = rooms.app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] in ("http", "websocket") and scope["path"].rstrip("/") == PATH:
            return Match.FULL, {"relais.route": PATH}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)
