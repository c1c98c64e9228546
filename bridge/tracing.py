"""OpenTelemetry for the bridge, when a TracerProvider is given (never otherwise: no cost when off).

Each HTTP request and WebSocket is a server span (opentelemetry-instrumentation-fastapi, named by
route template, continuing an incoming `traceparent`); each call to the gRPC server is a client
span whose context travels in the call's metadata, so the server's spans join the same trace.
The request's id is set on its span by the observability middleware (`relais.request_id`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry.trace import Span, TracerProvider
from starlette.routing import Match
from starlette.types import Scope

from bridge.handshake import TEMPLATE_KEY
from bridge.plugins import PluginRoutes
from bridge.routes import RouteTable


def instrument_app(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def name_by_template(span: Span, scope: Scope) -> None:
        """The instrumentation names a span by the `path` of the router entry that matches; the
        contract's and the plugins' routes are one entry each (a RouteTable), with no one path:
        the span takes the template that entry matches ("POST /llm/infer")."""
        if not span.is_recording() or scope.get("type") != "http":
            return
        for route in app.router.routes:
            if not isinstance(route, RouteTable | PluginRoutes):
                continue
            match, child = route.matches(scope)
            if match is Match.FULL and TEMPLATE_KEY in child:
                span.update_name(f"{scope['method']} {child[TEMPLATE_KEY]}")
                span.set_attribute("http.route", child[TEMPLATE_KEY])
                return

    # /metrics is scraped every few seconds: traces of it would drown the rest.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/metrics", server_request_hook=name_by_template
    )


def client_interceptors(provider: TracerProvider | None) -> list[Any]:
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]
