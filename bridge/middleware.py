"""Request id, access log and HTTP metrics, as one pure ASGI middleware (no body buffering)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("relais.http.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    template = scope.get("relais.route")
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
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
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
