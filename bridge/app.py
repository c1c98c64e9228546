"""The FastAPI bridge: routes compiled from the proto descriptors, one transcoding path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from google.protobuf.descriptor import ServiceDescriptor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from bridge.bindings import compile_bindings, compile_websockets, contract_services
from bridge.errors import error_response
from bridge.middleware import ObservabilityMiddleware
from bridge.openapi import build_openapi
from bridge.pages import PAGE_OPERATIONS, install_pages
from bridge.rooms import Rooms, SocketIORoute
from bridge.routes import Transcoder, proto_routes, request_id_of
from bridge.sockets import websocket_routes
from bridge.upstream import Upstream
from server.system.service import relais_version

log = logging.getLogger("relais.bridge")

TITLE = "Relais"
DEFAULT_MAX_BODY = 16 * 1024 * 1024


def create_app(
    *,
    upstream: str,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    cookie_secure: bool = False,
    services: Sequence[ServiceDescriptor] | None = None,
    ws_ping_interval: float = 20.0,
    redis_url: str | None = None,
) -> FastAPI:
    """The bridge for the gRPC server at `upstream` ("host:port"), serving the
    bindings of `services` (every relais.v1 service by default)."""
    services = contract_services() if services is None else services
    bindings = compile_bindings(services)
    sockets = compile_websockets(services)
    channel = Upstream(upstream)
    rooms = Rooms(channel, redis_url=redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Socket.IO's background tasks (pings, the service task) end with the app.
        await rooms.server.shutdown()
        await channel.close()

    version = relais_version()
    app = FastAPI(title=TITLE, version=version, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    document = build_openapi(bindings, title=TITLE, version=version, extra_paths=PAGE_OPERATIONS)
    install_pages(app, openapi_json=orjson.dumps(document), title=TITLE, version=version, route_count=len(bindings))
    app.router.routes.extend(
        proto_routes(bindings, Transcoder(channel, max_body_bytes=max_body_bytes, cookie_secure=cookie_secure))
    )
    app.router.routes.extend(websocket_routes(sockets, channel, ping_interval=ws_ping_interval))
    app.router.routes.append(SocketIORoute(rooms))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "HTTP_ERROR")
        message = "No route matches this path" if error.status_code == 404 else str(error.detail)
        return error_response(
            error.status_code,
            code=code,
            message=message,
            request_id=request_id_of(request.scope),
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected bridge error request_id=%s", request_id_of(request.scope))
        return error_response(
            500,
            code="INTERNAL_ERROR",
            request_id=request_id_of(request.scope),
            message=f"Internal error; the log has the details under request id {request_id_of(request.scope)}",
        )

    app.add_middleware(ObservabilityMiddleware)
    app.state.bindings = bindings
    app.state.websockets = sockets
    app.state.openapi = document
    return app
