"""An external MCP server over stdio (tests/tools/mcp_server.py, written with the mcp SDK):
listed, called, killed (its tools disappear, the others work, /health says so), restarted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from tests.identity.helpers import Account
from tests.tools.support import call, result, tool_names, wait_for

EXTERNAL = {"add", "pid", "slow", "fail", "ext__calculator"}


def test_external_tools_are_listed_and_namespaced_on_clashes(http: httpx.Client, user: Account) -> None:
    names = wait_for(lambda: (found := tool_names(http, user)) and set(found) >= EXTERNAL and found, what="ext tools")
    assert "calculator" in names  # the built-in keeps its name
    add = http.get("/tools/add", headers=user.bearer).json()
    assert add["source"] == "ext" and add["category"] == "external"
    assert add["parameters"]["required"] == ["a", "b"]


def test_external_tools_are_called(http: httpx.Client, user: Account) -> None:
    wait_for(lambda: "add" in tool_names(http, user), what="ext tools")
    assert result(http, user, "add", a=2, b=40)["content"] == "42"
    assert result(http, user, "ext__calculator", expression="1+1")["content"] == "ext:1+1"
    assert result(http, user, "calculator", expression="1+1")["content"] == "1+1 = 2"
    failed = result(http, user, "fail")
    assert failed["is_error"] is True and "always fails" in failed["content"]
    assert call(http, user, "add", a="two", b=1).status_code == 422


def test_killed_server_hides_only_its_tools_and_comes_back(
    http: httpx.Client, user: Account, root: Account, markers: Path
) -> None:
    wait_for(lambda: "pid" in tool_names(http, user), what="ext tools")
    pid = int(result(http, user, "pid")["content"])
    # Kept down until the test brings it back: the supervisor's own retries fail meanwhile.
    (markers / "offline").write_text("down")
    os.kill(pid, signal.SIGKILL)

    names = wait_for(lambda: (found := tool_names(http, user)) and "add" not in found and found, what="tools gone")
    assert not EXTERNAL & set(names)
    assert "calculator" in names
    assert result(http, user, "calculator", expression="6 * 7")["content"] == "6 * 7 = 42"
    health = http.get("/health").json()
    assert health["tool_sources"] == {"builtin": "connected", "ext": "disconnected"}
    assert health["status"] == "degraded"
    assert call(http, user, "add", a=1, b=2).status_code == 404

    # Reconnected on demand (it is also retried in the background with back-off).
    (markers / "offline").unlink()
    source = http.post("/admin/tools/sources/ext/reconnect", headers=root.bearer, json={}).json()
    assert source["state"] == "connected", source
    assert source["tools_count"] == 5 and source["error"] == ""
    assert result(http, user, "add", a=1, b=2)["content"] == "3"
    assert int(result(http, user, "pid")["content"]) != pid
    assert http.get("/health").json()["tool_sources"]["ext"] == "connected"


def test_killed_server_is_reopened_by_itself(http: httpx.Client, user: Account) -> None:
    wait_for(lambda: "pid" in tool_names(http, user), what="ext tools")
    pid = int(result(http, user, "pid")["content"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "pid" not in tool_names(http, user), what="tools gone")
    wait_for(lambda: "pid" in tool_names(http, user), timeout=30, what="tools back")
    assert int(result(http, user, "pid")["content"]) != pid
