"""OpenTelemetry: one trace from the bridge through the gRPC server to the database (and the model),
request ids on its spans; nothing instrumented when tracing is off."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bridge.app import create_app
from cli.telemetry import tracer_provider_from_environment
from server import tracing
from server.app import RelaisServer
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support.live import LiveStack


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module", params=[True, False], ids=["in-process", "socket"])
def traced(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, exporter: InMemorySpanExporter
) -> Iterator[LiveStack]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    data = tmp_path_factory.mktemp("traced")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        bridge_in_process=request.param,
    )
    stack = LiveStack(settings, tracer_provider=provider).start()
    yield stack
    stack.stop()
    tracing.use(None)


async def test_tracing_is_off_without_a_provider(tmp_path: Path) -> None:
    # First in the module: the traced stack below turns the server's own spans on while it runs.
    # (async: building the app opens a grpc.aio channel, which wants an event loop.)
    app = create_app(upstream="127.0.0.1:1")
    server = RelaisServer(stack_settings(tmp_path, f"sqlite:///{tmp_path / 'relais.db'}"))

    assert not any("OpenTelemetry" in type(m.cls).__name__ + str(m.cls) for m in app.user_middleware)
    assert server.tracer_provider is None
    assert tracing.server_interceptors(None) == [] and not tracing.enabled()
    with tracing.span("anything") as opened:
        assert opened is None


def finished(exporter: InMemorySpanExporter, trace_id: int, name: str) -> list[ReadableSpan]:
    """The trace's spans once one named `name` has ended (the HTTP span ends after its response)."""
    deadline = time.monotonic() + 10
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]
        if any(s.name == name for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def ancestry(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


def test_one_trace_crosses_bridge_grpc_server_and_database(traced: LiveStack, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    answer = httpx.post(
        f"{traced.base_url}/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        headers={"x-request-id": "trace-me-1"},
    )
    assert answer.status_code == 200
    grpc_server = next(
        s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER and s.name.endswith("AuthService/Login")
    )
    assert grpc_server.context is not None
    spans = finished(exporter, grpc_server.context.trace_id, "POST /auth/login")

    database = [s for s in spans if (s.attributes or {}).get("db.system") == "sqlite"]
    assert database, [s.name for s in spans]
    chain = ancestry(database[0], spans)
    kinds = [(s.kind, s.instrumentation_scope.name if s.instrumentation_scope else "") for s in chain]
    # database statement ← gRPC server span ← gRPC client span (in the bridge) ← HTTP request span;
    # in process the call never leaves the process, so there is no client span to send it.
    assert (SpanKind.SERVER, "opentelemetry.instrumentation.grpc") in kinds
    over_socket = (SpanKind.CLIENT, "opentelemetry.instrumentation.grpc") in kinds
    assert over_socket is not traced.settings.bridge_in_process
    http = next(s for s in chain if s.kind is SpanKind.SERVER and s.name == "POST /auth/login")
    assert http.instrumentation_scope is not None
    assert http.instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
    # The request id the caller gave names the request in both halves.
    assert (http.attributes or {}).get("relais.request_id") == "trace-me-1"
    assert (grpc_server.attributes or {}).get("relais.request_id") == "trace-me-1"


def test_an_incoming_traceparent_is_continued(traced: LiveStack, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    # urllib, not httpx: the traced server instruments httpx in this process, and it would start
    # a trace of its own.
    request = urllib.request.Request(
        f"{traced.base_url}/health", headers={"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200

    spans = finished(exporter, int(parent_trace, 16), "GET /health")
    assert any(s.name == "GET /health" for s in spans)
    assert any(s.name.endswith("SystemService/GetHealth") and s.kind is SpanKind.SERVER for s in spans)


@pytest.mark.slow
def test_a_generation_is_a_span_under_its_rpc(traced: LiveStack, exporter: InMemorySpanExporter) -> None:
    token = httpx.post(f"{traced.base_url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()[
        "access_token"
    ]
    exporter.clear()

    answer = httpx.post(
        f"{traced.base_url}/llm/infer",
        json={"prompt": "The capital of France is", "max_tokens": 4},
        headers={"authorization": f"Bearer {token}"},
        timeout=240,
    )

    assert answer.status_code == 200, answer.text
    generate = next(s for s in exporter.get_finished_spans() if s.name == "llm.generate")
    assert generate.context is not None
    spans = finished(exporter, generate.context.trace_id, "POST /llm/infer")
    attributes = generate.attributes or {}
    assert attributes["gen_ai.system"] == "local" and attributes["gen_ai.usage.output_tokens"] >= 1
    assert attributes["gen_ai.usage.input_tokens"] >= 1 and attributes["relais.outcome"] == "complete"
    assert "POST /llm/infer" in [span.name for span in ancestry(generate, spans)]


def test_the_otlp_exporter_is_built_only_when_an_endpoint_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracer_provider_from_environment() is None

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "relais-eu")
    provider = tracer_provider_from_environment()

    assert provider is not None and provider.resource.attributes["service.name"] == "relais-eu"
    provider.shutdown()
