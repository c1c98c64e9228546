"""Calls, errors and latency of a plugin's routes and actions on this replica."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0


class CallStats:
    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self._latencies: deque[float] = deque(maxlen=WINDOW)

    def record(self, seconds: float, *, ok: bool) -> None:
        self.calls += 1
        self.errors += 0 if ok else 1
        self._latencies.append(seconds * 1000)

    def percentiles(self) -> Percentiles:
        """Nearest-rank percentiles of the last WINDOW calls, in milliseconds."""
        ordered = sorted(self._latencies)
        if not ordered:
            return Percentiles()

        def rank(fraction: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, int(-(-fraction * len(ordered) // 1)) - 1))]

        return Percentiles(p50=rank(0.50), p95=rank(0.95), p99=rank(0.99), max=ordered[-1])
