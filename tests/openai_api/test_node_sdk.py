"""The official `openai` npm package, installed into a fresh npm project, run by Node against a
live Relais on the real packaged Gemma (node_sdk_check.mjs)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.support.live import LiveStack

pytestmark = pytest.mark.slow

# The major version the check is written against (the package's own CommonJS/ESM entry points).
PACKAGE = "openai@7"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{Path(tmp_path_factory.mktemp('node')) / 'relais.db'}"


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def test_the_openai_npm_package_talks_to_relais(openai_stack: LiveStack, key: str, tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "check", "private": True, "type": "module"}))
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE], cwd=tmp_path)
    shutil.copy(Path(__file__).with_name("node_sdk_check.mjs"), tmp_path / "check.mjs")
    env = {**os.environ, "RELAIS_BASE_URL": openai_stack.base_url, "RELAIS_API_KEY": key}

    out = json.loads(run(["node", "check.mjs"], cwd=tmp_path, env=env).strip().splitlines()[-1])

    assert {"gemma3-270m", "auto", "all-MiniLM-L6-v2"} <= set(out["models"])
    assert out["completion"]["object"] == "chat.completion" and out["completion"]["content"].strip()
    assert out["completion"]["finish"] in ("stop", "length") and out["completion"]["usage"]["prompt_tokens"] > 10
    assert (
        out["stream"]["pieces"] > 2 and out["stream"]["text"].strip() and out["stream"]["finish"] in ("stop", "length")
    )
    assert out["stream"]["usage"]["completion_tokens"] > 2
    assert out["tool"]["finish"] == "tool_calls" and out["tool"]["name"] == "get_weather"
    assert isinstance(out["tool"]["arguments"]["city"], str)
    jsonschema.validate(out["json"], {"type": "object", "required": ["name", "country"]})
    assert out["embeddings"]["count"] == 2 and out["embeddings"]["dimensions"] == [384, 384]
    assert math.isclose(out["embeddings"]["norm"], 1, abs_tol=1e-4)
    assert out["error"] == {"status": 404, "code": "model_not_found", "type": "invalid_request_error"}
