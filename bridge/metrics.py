"""The bridge's Prometheus metrics (served at /metrics with the server's, when both run in one process).

Labels are bounded: HTTP route *templates*, never raw paths.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# The server's buckets (server/observability.py), so both halves' latencies compare.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "relais_http_requests_total", "HTTP requests answered by the bridge.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "relais_http_request_duration_seconds",
    "Time from the request to the end of the response.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("relais_http_requests_in_flight", "HTTP requests being answered.")
