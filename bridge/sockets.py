"""WebSocket routes for server-streaming RPCs, declared by (relais.options.v1.stream).websockets.

The handshake is where a WebSocket is authenticated: by the `access_token` cookie,
an `Authorization: Bearer` header, an `X-API-Key` header, or `?token=` (browsers
cannot set headers on WebSockets). A handshake that carries a cookie from another
origin is refused: browsers send cookies on cross-site WebSockets, and the CSRF
header that protects cookie-authenticated POSTs cannot be set on them.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import grpc
from relais.options.v1 import options_pb2
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from bridge.bindings import WebSocketBinding
from bridge.errors import RpcFailure, error_response, rpc_failure
from bridge.routes import FORWARDED_HEADERS, request_id_of
from bridge.streams import LocalAssistantSocket, OrchestratorSocket
from bridge.upstream import Upstream


def socket_metadata(websocket: WebSocket, request_id: str) -> list[tuple[str, str]]:
    """The credentials and client facts of the handshake, as gRPC metadata."""
    metadata = [("x-request-id", request_id), ("x-http-method", "GET")]
    if websocket.client:
        metadata.append(("x-forwarded-for", websocket.client.host))
    for name, key in FORWARDED_HEADERS.items():
        value = websocket.headers.get(name)
        if value and value.isascii() and value.isprintable():
            metadata.append((key, value))
    token = websocket.query_params.get("token")
    if token and "authorization" not in websocket.headers and token.isascii() and token.isprintable():
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


def same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urllib.parse.urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


class ProtoWebSocketRoute(BaseRoute):
    def __init__(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float = 20.0) -> None:
        self.binding = binding
        self._ping_interval = ping_interval
        self.path = binding.path
        self.name = binding.route_name
        self._upstream = upstream

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            return Match.FULL, {"relais.route": self.path}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        request_id = request_id_of(scope)
        metadata = socket_metadata(websocket, request_id)
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
        if self.binding.dialect == options_pb2.STREAM_DIALECT_ORCHESTRATOR_WS:
            socket = OrchestratorSocket(self.binding, self._upstream, ping_interval=self._ping_interval)
            await socket.serve(websocket, metadata)
        else:
            await LocalAssistantSocket(self.binding, self._upstream).serve(websocket, metadata)

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
) -> list[ProtoWebSocketRoute]:
    return [ProtoWebSocketRoute(binding, upstream, ping_interval=ping_interval) for binding in bindings]
