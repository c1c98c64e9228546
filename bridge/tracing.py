"""OpenTelemetry for the bridge, when a TracerProvider is given (never otherwise: no cost when off).

Each HTTP request and WebSocket is a server span (opentelemetry-instrumentation-fastapi, named by
route template, continuing an incoming `traceparent`); each call to the gRPC server is a client
span whose context travels in the call's metadata, so the server's spans join the same trace.
The request's id is set on its span by the observability middleware (`relais.request_id`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider


def instrument_app(app: FastAPI, provider: TracerProvider | None) -> None:
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # /metrics is scraped every few seconds: traces of it would drown the rest.
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/metrics")


def client_interceptors(provider: TracerProvider | None) -> list[Any]:
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]
