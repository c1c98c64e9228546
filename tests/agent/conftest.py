"""A stack (SQLite) serving the real packaged Gemma model and a scripted OpenAI-compatible model,
with the external MCP server of the tools tests (its `slow` tool: cancellation mid-tool)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.scripted_llm import ScriptedLlm
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.identity.helpers import Account, new_account
from tests.support.live import LiveStack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedLlm]:
    llm = ScriptedLlm().start()
    yield llm
    llm.stop()


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def agent_stack(tmp_path_factory: pytest.TempPathFactory, scripted: ScriptedLlm, markers: Path) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("agent")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        models=[
            {"key": "gemma3-270m", "backend": "local", "context_window": 2048},
            {"key": "scripted", "backend": "openai", "base_url": scripted.base_url, "model_name": "scripted"},
        ],
        default_model="gemma3-270m",
        llm_parallel=1,
        llm_threads=1,
        mcp_servers=[
            {
                "name": "ext",
                "command": sys.executable,
                "args": ["-m", "tests.tools.mcp_server", str(markers)],
                "cwd": str(ROOT),
                "env": {"PYTHONPATH": ":".join(sys.path)},
            }
        ],
        mcp_ping_interval=0.5,
        ws_ping_interval=5.0,
    )
    live = LiveStack(settings).start()
    yield live
    live.stop()


@pytest.fixture
def http(agent_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent_stack.base_url, timeout=600) as client:
        yield client


@pytest.fixture
def user(http: httpx.Client) -> Account:
    return new_account(http)
