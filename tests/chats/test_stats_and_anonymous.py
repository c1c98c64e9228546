"""Issue 13: the Orchestrator's /api/stats with its documented fields, read anonymously where the
operator allows it, and /api/memory/search, which anonymous access does not cover (a clear 401).
The document's own curl lines, with only the base URL substituted."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import stack_settings
from tests.identity.helpers import new_account
from tests.support import services
from tests.support.live import LiveStack

DOCUMENTED = {"uptime", "conversations", "messages", "tools_count", "memory_entries", "models_available"}


def curl(line: str, base_url: str) -> tuple[int, str]:
    """Run a curl line of the document against `base_url`; (status, body)."""
    command = line.replace("https://ai.4lb.ca", base_url)
    result = subprocess.run(
        ["bash", "-c", f"{command} -s -w '\\n%{{http_code}}'"], capture_output=True, text=True, timeout=30
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


@pytest.fixture(scope="module")
def open_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("anonymous")
    live = services.start_stack_with_test_service(
        stack_settings(data, f"sqlite:///{data / 'db.sqlite'}", allow_anonymous=True)
    )
    yield live
    live.stop()


def test_the_documented_stats_example_works_anonymously(open_stack: LiveStack) -> None:
    status, body = curl("curl https://ai.4lb.ca/api/stats", open_stack.base_url)

    assert status == 200, body
    stats = httpx.Response(200, content=body).json()
    assert set(stats) >= DOCUMENTED
    assert re.fullmatch(r"\d+d \d+h \d+m", stats["uptime"])
    assert stats["models_available"] == stats["models"] >= 2  # "auto" and the packaged model
    assert stats["conversations"] == stats["messages"] == stats["memory_entries"] == 0
    assert isinstance(stats["tools_count"], int)


def test_signed_in_stats_keep_the_precise_fields_beside_the_documented_ones(open_stack: LiveStack) -> None:
    with httpx.Client(base_url=open_stack.base_url, timeout=30) as http:
        owner = new_account(http)
        stats = http.get("/api/stats", headers=owner.bearer).json()

    assert DOCUMENTED | {"uptime_seconds", "models", "agents", "prompt_tokens"} <= set(stats)
    assert stats["uptime"].startswith(f"{stats['uptime_seconds'] // 86400}d ")


def test_anonymous_memory_search_is_a_clear_401(open_stack: LiveStack) -> None:
    status, body = curl('curl "https://ai.4lb.ca/api/memory/search?q=projet%20JSR&limit=5"', open_stack.base_url)

    assert status == 401
    assert "anonymous access does not cover this route" in body


def test_stats_need_credentials_when_anonymous_access_is_off(http: httpx.Client) -> None:
    response = http.get("/api/stats")

    assert response.status_code == 401 and response.json()["detail"] == "Authentication required"
