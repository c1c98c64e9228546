"""Static checks run with the suite: ruff (lint and format) and strict mypy on hand-written code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SOURCES = ["server", "bridge", "cli", "clients", "tests", "bench", "tools"]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_and_format() -> None:
    lint = run(str(BIN / "ruff"), "check", *SOURCES)
    formatted = run(str(BIN / "ruff"), "format", "--check", *SOURCES)
    assert lint.returncode == 0, lint.stdout
    assert formatted.returncode == 0, formatted.stdout


def test_mypy_strict() -> None:
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout
