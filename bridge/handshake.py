"""What the bridge passes to the server with every call: the request id, and the HTTP
headers that carry credentials and client facts, as gRPC metadata.

A WebSocket is authenticated by its handshake: the `access_token` cookie, an
`Authorization: Bearer` header, an `X-API-Key` header, or `?token=` (browsers cannot set
headers on WebSockets). A handshake carrying a cookie from another origin is refused by the
routes: browsers send cookies on cross-site WebSockets, and the CSRF header that protects
cookie-authenticated POSTs cannot be set on them.
"""

from __future__ import annotations

import urllib.parse

from starlette.types import Scope
from starlette.websockets import WebSocket

from bridge.forwarding import Forwarding

# HTTP headers passed to the server as gRPC metadata (credentials and client facts), and the
# metadata key each travels under: gRPC replaces `user-agent` with its own.
FORWARDED_HEADERS = {
    "authorization": "authorization",
    "cookie": "cookie",
    "x-api-key": "x-api-key",
    "x-csrf-token": "x-csrf-token",
    "x-session-id": "x-session-id",
    "user-agent": "x-forwarded-user-agent",
    "accept-language": "accept-language",
    # Honoured by the RPCs whose (relais.options.v1.idempotency).key is set (declared in OpenAPI).
    "idempotency-key": "idempotency-key",
    # The hops a request made through Relais' OpenAI-compatible backends (the loop guard).
    "x-relais-via": "x-relais-via",
}

# The scope key a matched route (contract, socket or framing) sets its template under: the
# access log, metrics and span names read it.
TEMPLATE_KEY = "relais.route"


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def socket_metadata(websocket: WebSocket, request_id: str, forwarding: Forwarding) -> list[tuple[str, str]]:
    """The credentials and client facts of the handshake, as gRPC metadata."""
    metadata = [("x-request-id", request_id), ("x-http-method", "GET")]
    metadata += forwarding.metadata(websocket.scope)
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
