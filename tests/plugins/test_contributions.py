"""A running plugin's MCP tools join the tool registry (GET /tools, POST /tools/{name}/call, the
agent loop) and its task actions join the scheduler's (/jobs, /system/tasks); both leave with it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.identity.helpers import new_account
from tests.plugins.support import wait_until
from tests.support.live import LiveStack


def _tool(http: httpx.Client, headers: dict[str, str], name: str) -> dict[str, Any] | None:
    listed = http.get("/tools", headers=headers).json()["tools"]
    return next((tool for tool in listed if tool["name"] == name), None)


def _actions(http: httpx.Client, headers: dict[str, str]) -> list[str]:
    return [action["name"] for action in http.get("/jobs/actions", headers=headers).json()["actions"]]


def test_a_running_plugin_s_tools_and_actions_join_relais_own_and_leave_with_it(
    stack: LiveStack, http: httpx.Client, hello: dict[str, Any]
) -> None:
    user = new_account(http)

    greet = wait_until(lambda: _tool(http, user.bearer, "greet"))
    called = http.post("/tools/greet/call", json={"arguments": {"name": "Ann"}}, headers=user.bearer)
    wait_until(lambda: "hello.greet" in _actions(http, user.bearer))
    job = http.post(
        "/jobs/add", json={"type": "once", "action": "hello.greet", "params": {"name": "Ann"}}, headers=user.bearer
    )
    assert job.status_code in (200, 201), job.text
    job_id = job.json()["id"]
    runs = wait_until(
        lambda: [r for r in http.get(f"/jobs/{job_id}", headers=user.bearer).json()["history"] if r["finished_at"]]
    )

    assert (greet["source"], greet["category"]) == ("plugin:hello", "plugin")
    assert called.status_code == 200 and called.json()["content"] == "Hello, Ann!", called.text
    assert runs[0]["status"] == "success" and runs[0]["output"]["message"] == "Hello, Ann!"
    # The action ran as its owner, in the plugin.
    assert runs[0]["output"]["for"] == str(user.user_id)

    assert http.post("/plugins/hello/stop").status_code == 200
    wait_until(lambda: _tool(http, user.bearer, "greet") is None)
    wait_until(lambda: "hello.greet" not in _actions(http, user.bearer))
