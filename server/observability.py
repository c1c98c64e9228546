"""Logging set-up and the Prometheus metrics both halves of Relais record.

Metric names follow the Prometheus conventions (`_total`, `_seconds`). Labels are
bounded: gRPC method names and HTTP route *templates*, never raw paths.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GRPC_STARTED = Counter(
    "relais_grpc_server_started_total", "RPCs started on the server.", ["grpc_service", "grpc_method"]
)
GRPC_HANDLED = Counter(
    "relais_grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_LATENCY = Histogram(
    "relais_grpc_server_handling_seconds",
    "Time from the start of an RPC to its status.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
DATA_DIR_FREE_BYTES = Gauge("relais_data_dir_free_bytes", "Free bytes on the data directory's volume.")
RATE_LIMIT_REJECTIONS = Counter(
    "relais_rate_limit_rejections_total",
    "Calls refused by a rate limit, by tier (anonymous, user, admin; login: sign-in attempts).",
    ["tier"],
)
AUTH_REJECTIONS = Counter(
    "relais_auth_rejections_total",
    "Calls refused as UNAUTHENTICATED (no, bad or ended credentials; wrong password) or PERMISSION_DENIED.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
SCHEDULER_RUNS = Counter("relais_scheduler_task_runs_total", "Scheduler task runs, by outcome.", ["task", "outcome"])

# Values that must never reach a log line, whatever logger emits them.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization|cookie)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"
    ),
)


def redact(text: str) -> str:
    """Mask credentials in free text.

    >>> redact("Authorization: Bearer abc.def password=hunter2")
    'Authorization: Bearer *** password=***'
    """
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats like logging.Formatter, then masks credentials (defence in depth)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line (RELAIS_LOG_FORMAT=json): time, level, logger, message, and the
    trace and span ids when tracing is on; credentials masked like the text format's."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            log_data["trace_id"] = format(span.trace_id, "032x")
            log_data["span_id"] = format(span.span_id, "016x")
        return {key: redact(value) if isinstance(value, str) else value for key, value in log_data.items()}


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            RedactingJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


# Generation, with genai-perf's definitions: time to first token, inter-token latency
# ((end - first token) / (output tokens - 1), per request), output tokens.
TOKEN_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5, 10, 30)
LLM_TTFT = Histogram(
    "relais_llm_time_to_first_token_seconds",
    "Time from the request to its first generated text.",
    ["model", "backend"],
    buckets=TOKEN_LATENCY_BUCKETS,
)
LLM_ITL = Histogram(
    "relais_llm_inter_token_latency_seconds",
    "Mean time between output tokens of a request after the first.",
    ["model", "backend"],
    buckets=TOKEN_LATENCY_BUCKETS,
)
LLM_OUTPUT_TOKENS = Counter("relais_llm_output_tokens_total", "Tokens generated.", ["model", "backend"])
LLM_PROMPT_TOKENS = Counter(
    "relais_llm_prompt_tokens_total", "Prompt tokens of generations, as the backend counted them.", ["model", "backend"]
)
# The local model's queue (server/inference/fairqueue.py): requests waiting for a llama.cpp slot.
LLM_QUEUE_DEPTH = Gauge("relais_llm_queue_depth", "Requests waiting for a local model's slot.", ["model"])
LLM_QUEUE_WAIT = Histogram(
    "relais_llm_queue_wait_seconds",
    "Time a request waited for a local model's slot (0 when one was free).",
    ["model"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LLM_ACTIVE_STREAMS = Gauge("relais_llm_active_streams", "Generations in progress.", ["model", "backend"])
LLM_REQUESTS = Counter(
    "relais_llm_requests_total", "Generations by outcome (complete, cancelled, error).", ["model", "backend", "outcome"]
)

# Retrieval.
RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RETRIEVAL_SEARCH_SECONDS = Histogram(
    "relais_retrieval_search_seconds",
    "Passage searches in the vector store (the query's embedding excluded), by mode.",
    ["mode"],
    buckets=RETRIEVAL_BUCKETS,
)
RETRIEVAL_EMBED_SECONDS = Histogram(
    "relais_retrieval_embedding_seconds",
    "Calls to the embedding model, by backend.",
    ["backend"],
    buckets=RETRIEVAL_BUCKETS,
)
RETRIEVAL_PASSAGES_INDEXED = Counter(
    "relais_retrieval_passages_indexed_total", "Passages embedded and written, by scope.", ["scope"]
)
