"""The FastAPI bridge: routes compiled from the proto descriptors, one transcoding path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import orjson
from fastapi import FastAPI
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.trace import TracerProvider
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from bridge.bindings import Binding, compile_bindings, compile_websockets, contract_services
from bridge.errors import error_response
from bridge.forwarding import Forwarding
from bridge.handshake import request_id_of
from bridge.middleware import HeaderLimitMiddleware, ObservabilityMiddleware
from bridge.openapi import build_openapi
from bridge.pages import PAGE_OPERATIONS, PAGE_PATHS, install_pages
from bridge.plugins import PluginRoutes, PluginRouteWatcher, first_segment
from bridge.routes import RouteTable, Transcoder, proto_routes
from bridge.sockets import websocket_routes
from bridge.tracing import client_interceptors, instrument_app
from bridge.upstream import InProcess, Upstream

log = logging.getLogger("relais.bridge")

TITLE = "Relais"
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-CSRF-Token", "X-Request-ID", "Last-Event-ID"]
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-Limit-Requests",
    "X-RateLimit-Remaining-Requests",
    "X-RateLimit-Reset-Requests",
    "Retry-After",
]
DEFAULT_MAX_BODY = 16 * 1024 * 1024


def relais_version() -> str:
    """The installed package's version (the bridge may run without the server's code)."""
    try:
        return metadata.version("relais")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def create_app(
    *,
    upstream: str,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    cookie_secure: bool = False,
    services: Sequence[ServiceDescriptor] | None = None,
    ws_ping_interval: float = 20.0,
    sse_keepalive: float = 15.0,
    tracer_provider: TracerProvider | None = None,
    cors_origins: Sequence[str] = (),
    in_process: InProcess | None = None,
    trusted_proxies: Sequence[str] = (),
    bridge_secret: str | None = None,
) -> FastAPI:
    """The bridge for the gRPC server at `upstream` ("host:port"), serving the
    bindings of `services` (every relais.v1 service by default). With a `tracer_provider`, each
    request is a span and its calls to the server continue the trace (bridge/tracing.py). With
    `in_process`, the server running beside it in this process, calls skip the socket
    (grpc-gateway's RegisterXxxHandlerServer); what it does not serve still goes to `upstream`.
    `trusted_proxies` (addresses or networks) may name the client in X-Forwarded-For;
    `bridge_secret` proves to the server that the address the bridge forwards is the bridge's
    finding (see bridge/forwarding.py)."""
    services = contract_services() if services is None else services
    bindings = compile_bindings(services)
    sockets = compile_websockets(services)
    channel = Upstream(
        upstream,
        in_process,
        interceptors=client_interceptors(tracer_provider),
        forwarding=Forwarding(trusted_proxies, bridge_secret=bridge_secret),
    )
    socket_routes = websocket_routes(sockets, channel, ping_interval=ws_ping_interval)
    version = relais_version()
    transcoder = Transcoder(
        channel, max_body_bytes=max_body_bytes, cookie_secure=cookie_secure, keepalive=sse_keepalive
    )
    plugin_routes = PluginRoutes(transcoder)
    document: dict[str, Any] = {}
    served: list[bytes] = []

    def publish(plugin_bindings: list[Binding], comments: dict[str, str]) -> None:
        """The OpenAPI document for the contract's routes and the plugins' of now."""
        document.clear()
        document.update(
            build_openapi(
                [*bindings, *plugin_bindings],
                title=TITLE,
                version=version,
                extra_paths=PAGE_OPERATIONS,
                websockets=sockets,
                comments=comments,
            )
        )
        served[:] = [orjson.dumps(document)]

    publish([], {})
    watcher = PluginRouteWatcher(
        channel,
        plugin_routes,
        builtin=bindings,
        reserved_segments={"ws", *(first_segment(path) for path in (*PAGE_PATHS, *(s.path for s in sockets)))},
        published=publish,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watching = asyncio.create_task(watcher.run(), name="plugin-routes")
        yield
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        # Routes that hold streams and tasks of their own (Socket.IO) end them with the app.
        for route in socket_routes:
            if (close := getattr(route, "close", None)) is not None:
                await close()
        await channel.close()

    app = FastAPI(title=TITLE, version=version, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    install_pages(app, openapi_json=lambda: served[0], title=TITLE, version=version, route_count=len(bindings))
    app.router.routes.append(RouteTable(proto_routes(bindings, transcoder, websockets=[s.path for s in sockets])))
    # Plugin routes: after the contract's, under prefixes no contract route uses.
    app.router.routes.append(plugin_routes)
    app.router.routes.extend(socket_routes)

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

    if cors_origins:
        # Browser apps served from these origins may call the API with credentials; no origin may
        # by default, and never every origin (Settings refuses "*").
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(HeaderLimitMiddleware)
    app.add_middleware(ObservabilityMiddleware)
    instrument_app(app, tracer_provider)
    app.state.bindings = bindings
    app.state.websockets = sockets
    app.state.openapi = document
    app.state.plugin_routes = watcher
    return app
