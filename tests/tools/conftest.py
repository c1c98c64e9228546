"""A stack (SQLite: the tools do not depend on the database engine) with every built-in tool
enabled, an external stdio MCP server, and the web_fetch guard letting 127.0.0.2 in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.identity.helpers import Account, admin, new_account
from tests.support.live import LiveStack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("markers")


@pytest.fixture(scope="module")
def tools_stack(tmp_path_factory: pytest.TempPathFactory, markers: Path) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("tools")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        mcp_servers=[
            {
                "name": "ext",
                "command": sys.executable,
                "args": ["-m", "tests.tools.mcp_server", str(markers)],
                "cwd": str(ROOT),
                "env": {"PYTHONPATH": ":".join(sys.path)},
            }
        ],
        mcp_ping_interval=0.2,
        mcp_max_backoff=1.0,
        # The first memory or document tool call loads the embedding model and opens Milvus Lite.
        tool_timeout=120.0,
        web_fetch=True,
        web_fetch_max_bytes=2000,
        web_fetch_timeout=3.0,
        web_fetch_allow_networks=["127.0.0.2/32"],
        execute_allow=["echo", "sleep", "uname"],
        execute_timeout=2.0,
    )
    live = LiveStack(settings).start()
    yield live
    live.stop()


@pytest.fixture
def http(tools_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tools_stack.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def user(http: httpx.Client) -> Account:
    return new_account(http)


@pytest.fixture
def root(http: httpx.Client) -> Account:
    return admin(http)
