"""Relais benchmarks, run from the repository root:

    .venv/bin/python -m bench                  # every benchmark
    .venv/bin/python -m bench health --quick   # one benchmark, few requests (smoke run)

Each benchmark prints a markdown table and writes its results as JSON under bench/results/.
See bench/README.md.
"""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
