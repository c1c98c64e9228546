"""WebSocket routes for server-streaming RPCs, declared by (relais.options.v1.stream).websockets.

The standard route authenticates the handshake (see bridge/handshake.py) with the server
before accepting it, then lets the binding's framing serve the socket while the caller's
session lives. A framing with its own handshake supplies its whole route instead.
"""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from bridge.bindings import WebSocketBinding
from bridge.errors import RpcFailure, error_response, rpc_failure
from bridge.framings import websocket_framing
from bridge.handshake import TEMPLATE_KEY, request_id_of, same_origin, socket_metadata
from bridge.live import LiveRpcs, while_session_lives
from bridge.routes import method_not_allowed
from bridge.upstream import Upstream

# The WebSocket close code of a connection whose session ended (xcore's /ws uses it for bad auth too).
SESSION_ENDED = 4401


async def plain_http(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket path asked over plain HTTP: GET is told to upgrade (426), OPTIONS lists GET,
    anything else is a 405 (see method_not_allowed)."""
    await method_not_allowed(scope, ("GET",))(scope, receive, send)


class ProtoWebSocketRoute(BaseRoute):
    def __init__(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float = 20.0) -> None:
        self.binding = binding
        self._ping_interval = ping_interval
        self.path = binding.path
        self.name = binding.route_name
        self._upstream = upstream
        self._live = LiveRpcs(upstream)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["path"] != self.path:
            return Match.NONE, {}
        if scope["type"] == "websocket":
            return Match.FULL, {TEMPLATE_KEY: self.path}
        # Plain HTTP at a WebSocket's path: answered (426 or 405), unless an HTTP route shares it.
        return Match.PARTIAL, {TEMPLATE_KEY: self.path}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await plain_http(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        request_id = request_id_of(scope)
        metadata = socket_metadata(websocket, request_id, self._upstream.forwarding)
        if "cookie" in websocket.headers and not same_origin(websocket):
            await websocket.send_denial_response(
                error_response(
                    403,
                    code="CROSS_ORIGIN",
                    message="Cross-origin WebSocket with cookies refused",
                    request_id=request_id,
                )
            )
            return
        refusal = await self._authenticate(metadata)
        if refusal is not None:
            await websocket.send_denial_response(
                error_response(
                    refusal.status,
                    code=refusal.code,
                    message=refusal.message,
                    request_id=request_id,
                    details=refusal.violations,
                )
            )
            return
        await websocket.accept()
        framing = websocket_framing(self.binding.dialect)
        serving = framing.serve(websocket, self.binding, self._upstream, metadata, keepalive=self._ping_interval)
        # The socket closes when the caller's session ends (logout, termination...), not only its streams.
        ended = await while_session_lives(self._live, metadata, serving)
        if ended is not None:
            code, reason = (SESSION_ENDED, "Session ended") if ended == grpc.StatusCode.UNAUTHENTICATED else (1012, "")
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason or "Server going away; reconnect")

    async def _authenticate(self, metadata: list[tuple[str, str]]) -> RpcFailure | None:
        """None if the credentials admit the caller to the socket's RPC, else why not (the server decides)."""
        try:
            await self._upstream.check_access(self.binding.full_method, metadata)
        except grpc.aio.AioRpcError as error:
            return rpc_failure(error)
        return None

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


def websocket_routes(
    bindings: list[WebSocketBinding], upstream: Upstream, *, ping_interval: float = 20.0
) -> list[BaseRoute]:
    """Each binding's route: its framing's own (Socket.IO, xcore's /ws), or the standard one."""
    routes: list[BaseRoute] = []
    for binding in bindings:
        own = websocket_framing(binding.dialect).route(binding, upstream, ping_interval=ping_interval)
        routes.append(own or ProtoWebSocketRoute(binding, upstream, ping_interval=ping_interval))
    return routes
