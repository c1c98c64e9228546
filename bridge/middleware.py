"""Request id, access log and HTTP metrics, as one pure ASGI middleware (no body buffering)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import error_response
from bridge.handshake import TEMPLATE_KEY
from bridge.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("relais.http.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    template = scope.get(TEMPLATE_KEY)
    if template:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("root_path") or str(scope.get("path", "")).startswith("/static/"):
        return "/static/{path}"
    return "unmatched"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        span = trace.get_current_span()  # the request's, when tracing is on (bridge/tracing.py)
        if span.is_recording():
            span.set_attribute("relais.request_id", request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            elif kind == "websocket.accept":
                status = 101  # Switching Protocols: what the client saw
            elif kind == "websocket.close" and status == 500:
                status = 403  # closed before accepting: the server answered the handshake with 403
            elif kind == "websocket.http.response.start":
                status = message["status"]  # a handshake refused with a full HTTP response
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            method = scope.get("method", "WS")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            # The template, not the path or query: those can carry tokens (/ws/chat?token=…).
            log.info(
                "http method=%s route=%s status=%d duration_ms=%.2f request_id=%s",
                method,
                route,
                status,
                elapsed * 1000,
                request_id,
            )


# Request headers beyond these sizes are refused with 431 before anything else reads them:
# the credentials among them travel on as gRPC metadata, whose own limit would otherwise
# answer with a misleading RESOURCE_EXHAUSTED (a 429).
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 16 * 1024


def oversized_header(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The name of the first header over MAX_HEADER_BYTES, "headers" when they are too large
    together, or None."""
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            return name.decode("latin-1")
        total += size
    return "headers" if total > MAX_HEADERS_BYTES else None


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or (name := oversized_header(scope["headers"])) is None:
            await self.app(scope, receive, send)
            return
        limit = MAX_HEADERS_BYTES if name == "headers" else MAX_HEADER_BYTES
        what = "The request headers are" if name == "headers" else f"The {name} header is"
        response = error_response(
            431,
            code="REQUEST_HEADERS_TOO_LARGE",
            message=f"{what} larger than {limit} bytes",
            request_id=str(scope.get("state", {}).get("request_id", "")),
        )
        if scope["type"] == "websocket":
            # Refuse the handshake with the same answer (ASGI's WebSocket denial response).
            await receive()
            await send({"type": "websocket.http.response.start", "status": 431, "headers": response.raw_headers})
            await send({"type": "websocket.http.response.body", "body": response.body})
            return
        await response(scope, receive, send)
