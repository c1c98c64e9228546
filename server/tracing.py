"""OpenTelemetry traces of the server: off unless a TracerProvider is given.

`relais serve` builds the provider (OTLP export) only when OTEL_EXPORTER_OTLP_ENDPOINT is set
(cli/telemetry.py); tests give one with an in-memory exporter. When tracing is off nothing is
instrumented and `span()` is a null context, so the server pays nothing for it.

What is traced: every RPC (opentelemetry-instrumentation-grpc's server interceptor, which continues
the caller's trace from the `traceparent` metadata), each database statement (SQLAlchemy), outgoing
HTTP (httpx: OpenAI-compatible backends), a generation (`llm.generate`) and the vector store's
calls (`milvus.*`). Each RPC's span carries its request id (`relais.request_id`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider

_tracer: Tracer | None = None


def use(provider: TracerProvider | None) -> None:
    """Send the server's own spans to `provider` (None: tracing off). One provider per process."""
    global _tracer
    _tracer = provider.get_tracer("relais.server") if provider is not None else None


def enabled() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[Span | None]:
    """A child span of the current one around a block (None and no cost when tracing is off)."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, attributes=attributes) as opened:
        yield opened


def start_span(name: str, **attributes: str | int | float | bool) -> Span | None:
    """A span ended later by `end_span` (for work that outlives one block, such as a stream)."""
    return _tracer.start_span(name, attributes=attributes) if _tracer is not None else None


def activate(opened: Span | None) -> contextlib.AbstractContextManager[Any]:
    """Make `opened` the current span inside a block, so the calls made there are its children."""
    return trace.use_span(opened, end_on_exit=False) if opened is not None else contextlib.nullcontext()


def end_span(opened: Span | None, *, error: BaseException | None = None, **attributes: str | int | float) -> None:
    if opened is None:
        return
    opened.set_attributes(attributes)
    if error is not None:
        opened.set_status(Status(StatusCode.ERROR, type(error).__name__))
    opened.end()


def inject(metadata: list[tuple[str, str | bytes]]) -> None:
    """Add the current trace (`traceparent`…) to a call's metadata, as the gRPC client interceptor
    does over the wire: the in-process path's calls continue the bridge's trace the same way."""
    if _tracer is None:
        return
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    metadata.extend(carrier.items())


def annotate(**attributes: str | int | float | bool) -> None:
    """Add attributes to the current span (the RPC's, in an interceptor), when one is recording."""
    if _tracer is None:
        return
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes({f"relais.{key}": value for key, value in attributes.items()})


def server_interceptors(provider: TracerProvider | None) -> list[Any]:
    """The gRPC server interceptor that opens each RPC's span (outermost), or none."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=provider)]  # type: ignore[no-untyped-call]


def instrument_database(engine: Any, provider: TracerProvider | None) -> None:
    """A span per statement on `engine` (an AsyncEngine)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)


def instrument_http_clients(provider: TracerProvider | None) -> None:
    """A span per outgoing httpx request (the OpenAI-compatible backends' calls), process-wide."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def uninstrument_http_clients(provider: TracerProvider | None) -> None:
    """Undo instrument_http_clients when the server that asked for it stops."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
