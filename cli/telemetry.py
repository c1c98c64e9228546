"""The process's OpenTelemetry TracerProvider: built only when OTLP export is configured.

OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns tracing on; without it
Relais instruments nothing. The exporter follows the standard variables: OTEL_EXPORTER_OTLP_PROTOCOL
(`http/protobuf`, the default, to port 4318; or `grpc`, to 4317), OTEL_EXPORTER_OTLP_HEADERS,
OTEL_SERVICE_NAME (default `relais`), OTEL_TRACES_SAMPLER…
"""

from __future__ import annotations

import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


def tracing_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def otlp_exporter() -> SpanExporter:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: Relais exports with 'http/protobuf' or 'grpc'")


def tracer_provider_from_environment() -> TracerProvider | None:
    """A provider exporting in batches over OTLP, or None when no endpoint is configured."""
    if not tracing_configured():
        return None
    # Resource.create adds OTEL_RESOURCE_ATTRIBUTES; the attributes given here win over them.
    service = os.environ.get("OTEL_SERVICE_NAME") or "relais"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(otlp_exporter()))
    return provider
