"""Who may use which tool: administrators' tools never reach plain users; permissions are
checked on listing, describing and every call."""

from __future__ import annotations

import httpx
import pytest

from tests.identity.helpers import Account
from tests.tools.support import call, tool_names


@pytest.mark.parametrize("tool", ["web_fetch", "execute_command"])
def test_plain_user_is_denied_an_admin_tool(http: httpx.Client, user: Account, root: Account, tool: str) -> None:
    assert tool not in tool_names(http, user)
    assert http.get(f"/tools/{tool}", headers=user.bearer).status_code == 404
    arguments = {"url": "https://example.com"} if tool == "web_fetch" else {"program": "echo", "args": ["hi"]}
    denied = call(http, user, tool, **arguments)
    assert denied.status_code == 404
    assert tool in tool_names(http, root)
    assert http.get(f"/tools/{tool}", headers=root.bearer).json()["admin_only"] is True


def test_admin_runs_execute_command(http: httpx.Client, root: Account) -> None:
    body = call(http, root, "execute_command", program="echo", args=["hello", "$HOME", ";", "id"]).json()
    assert body["is_error"] is False
    # No shell: the arguments reach echo as they are.
    assert body["structured_content"]["output"] == "hello $HOME ; id\n"
    assert body["structured_content"]["exit_code"] == 0


def test_execute_command_allows_only_listed_programs(http: httpx.Client, root: Account) -> None:
    assert call(http, root, "execute_command", program="rm", args=["-rf", "/"]).status_code == 422
    assert call(http, root, "execute_command", program="/bin/sh", args=["-c", "id"]).status_code == 422
    slow = call(http, root, "execute_command", program="sleep", args=["10"]).json()
    assert slow["is_error"] is True and "did not finish within 2 s" in slow["content"]


def test_a_key_scoped_to_something_else_gets_no_tools(http: httpx.Client, root: Account) -> None:
    """Tools come from permissions: even an administrator's key, scoped to corpus:write, gets none."""
    key = http.post("/api/keys", headers=root.bearer, json={"name": "ci", "scopes": ["corpus:write"]})
    assert key.status_code in (200, 201), key.text
    headers = {"X-API-Key": key.json()["key"]}
    assert http.get("/tools", headers=headers).json() == {"count": 0, "tools": []}
    assert (
        http.post("/tools/calculator/call", headers=headers, json={"arguments": {"expression": "1"}}).status_code == 404
    )


def test_tool_sources_are_for_administrators(http: httpx.Client, user: Account, root: Account) -> None:
    assert http.get("/admin/tools/sources", headers=user.bearer).status_code == 403
    assert http.post("/admin/tools/sources/ext/reconnect", headers=user.bearer, json={}).status_code == 403
    sources = http.get("/admin/tools/sources", headers=root.bearer).json()["sources"]
    assert [source["name"] for source in sources][:1] == ["builtin"]
    assert http.post("/admin/tools/sources/nope/reconnect", headers=root.bearer, json={}).status_code == 404


def test_one_tool_can_be_granted_alone(http: httpx.Client, root: Account) -> None:
    """tools:<name> grants that tool only; administrators' tools also need the admin role, which an
    administrator's key keeps, and their own tools:<name>."""
    key = http.post("/api/keys", headers=root.bearer, json={"name": "calc", "scopes": ["tools:calculator"]})
    assert key.status_code == 201, key.text
    headers = {"X-API-Key": key.json()["key"]}
    assert [tool["name"] for tool in http.get("/tools", headers=headers).json()["tools"]] == ["calculator"]
    assert (
        http.post("/tools/web_fetch/call", headers=headers, json={"arguments": {"url": "https://x.org"}}).status_code
        == 404
    )
    called = http.post("/tools/calculator/call", headers=headers, json={"arguments": {"expression": "2+2"}})
    assert called.json()["content"] == "2+2 = 4"
