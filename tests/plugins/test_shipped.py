"""The shipped plugins: tasks and hello are installed and enabled at an instance's first start;
the local assistant's example (`curl -X POST …/plugins/tasks/enable` with its cookie and CSRF
token) works; tasks keeps a to-do list per user through its routes, tools and actions; an
enabled plugin runs again after a restart, and a removed one stays removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.auth import Principal
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.identity.helpers import new_account
from tests.plugins.conftest import ADMIN, plugin_stack
from tests.plugins.support import wait_until
from tests.support.live import LiveStack


async def _tool_calls(stack: LiveStack, principal: Principal) -> tuple[list[str], Any]:
    assert stack.server.plugins is not None
    [source] = [s for s in stack.server.plugins.tool_sources() if s.plugin_id == "tasks"]
    async with source.session(principal) as session:
        tools = sorted(tool.name for tool in (await session.list_tools()).tools)
        await session.call_tool("add_task", {"title": "Water the plants"})
        listed = await session.call_tool("list_tasks", {})
    return tools, listed.structured_content


@pytest.mark.slow
def test_shipped_plugins_from_first_start_to_restart(
    tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path, plugin_key: Ed25519PrivateKey
) -> None:
    stack = plugin_stack(tmp_path_factory, runtime_dir, plugin_key, plugins_shipped=["tasks", "hello"])
    try:
        with httpx.Client(base_url=stack.base_url, timeout=120) as http:
            wait_until(lambda: _states_as_admin(http) == {"hello": "running", "tasks": "running"}, 90)
            detail = http.get("/system/plugins/tasks", headers=ADMIN).json()
            assert (detail["signed_by"], detail["source"], detail["api_prefix"]) == ("shipped", "shipped", "/tasks")
            _local_assistant_example(stack)
            _todo_lists(stack, http)
            assert http.delete("/plugins/hello", headers=ADMIN).status_code == 204
    finally:
        stack.stop()

    again = LiveStack(stack.settings, authenticator=stack.authenticator, extra_services=stack.extra_services).start()
    try:
        with httpx.Client(base_url=again.base_url, timeout=120, headers=ADMIN) as http:
            wait_until(lambda: _states_as_admin(http) == {"tasks": "running"}, 60)
            wait_until(lambda: http.get("/tasks/items").status_code == 200)
    finally:
        again.stop()


def _states_as_admin(http: httpx.Client) -> dict[str, str]:
    return {e["name"]: e["state"] for e in http.get("/plugins", headers=ADMIN).json()["plugins"]}


def _local_assistant_example(stack: LiveStack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=120) as browser:
        # curl -s -X POST …/auth/login -H 'Content-Type: application/json' -d '{"user":…,"password":…}' -c cookies.txt
        login = browser.post("/auth/login", json={"user": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        token = login.json()["csrf_token"]
        # curl -s -X POST …/plugins/tasks/enable -b cookies.txt -H "X-CSRF-Token: <token>"
        enabled = browser.post("/plugins/tasks/enable", headers={"X-CSRF-Token": token})
        assert enabled.status_code == 200 and enabled.json()["state"] == "running", enabled.text
        assert browser.post("/plugins/tasks/enable").status_code == 403


def _todo_lists(stack: LiveStack, http: httpx.Client) -> None:
    alice, bob = new_account(http), new_account(http)

    added = http.post("/tasks/items", json={"title": "Buy milk"}, headers=alice.bearer)
    assert added.status_code == 201 and added.json()["done"] is False
    item = added.json()["id"]
    assert http.post(f"/tasks/items/{item}/complete", headers=alice.bearer).json()["done"] is True
    assert http.get("/tasks/items", headers=alice.bearer).json() == {"total": 0, "items": []}
    assert http.get("/tasks/items", params={"include_done": "true"}, headers=alice.bearer).json()["total"] == 1
    assert http.get("/tasks/items", params={"include_done": "true"}, headers=bob.bearer).json()["total"] == 0
    assert http.post(f"/tasks/items/{item}/complete", headers=bob.bearer).status_code == 404
    assert http.post("/tasks/items", json={"title": ""}, headers=alice.bearer).status_code == 400

    principal = Principal(subject=str(alice.user_id), user_id=alice.user_id, roles=frozenset({"user"}))
    tools, listed = stack.run(_tool_calls(stack, principal))
    assert tools == ["add_task", "complete_task", "list_tasks"]
    assert [entry["title"] for entry in listed["result"]] == ["Water the plants"]

    assert stack.server.plugins is not None
    actions = {action.name: action for action in stack.server.plugins.actions()}
    assert {"tasks.add", "tasks.purge_done", "hello.greet"} <= set(actions)
    stack.run(actions["tasks.add"].run({"title": "Weekly review"}, principal))
    removed = stack.run(actions["tasks.purge_done"].run({"older_than_days": 0}, principal))
    assert removed == {"removed": 1}
    titles = [entry["title"] for entry in http.get("/tasks/items", headers=alice.bearer).json()["items"]]
    assert titles == ["Weekly review", "Water the plants"]
    assert http.delete(f"/tasks/items/{item}", headers=alice.bearer).status_code == 404  # purged
