"""Pause, resume, run now, update, cancel (cooperative, at the next step) and delete; a failing
run is counted and its error kept; a finished run is announced as task.completed or task.failed."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from google.protobuf import json_format

from server.errors import Unavailable
from server.tasks.actions import Action, ActionContext
from tests.events.live import Subscriber, authenticated, receive
from tests.identity.helpers import Account, admin, new_account
from tests.support.live import LiveStack
from tests.tasks.support import Gate, add_job, finished_runs, job, wait_for


def _unique(stem: str) -> str:
    return f"test.{stem}-{uuid.uuid4().hex[:8]}"


def _failing(stack: LiveStack) -> str:
    name = _unique("failing")

    async def boom() -> None:
        raise Unavailable("the weather service did not answer")

    async def run(context: ActionContext) -> Any:
        return await context.step("ask the weather", boom)

    stack.server.tasks.registry.add(Action(name=name, description="Fails.", params_schema={"type": "object"}, run=run))
    return name


def _runs(http: httpx.Client, account: Account, job_id: str) -> int:
    detail = job(http, account, job_id)
    return int(detail["success_count"]) + int(detail["failure_count"])


def test_pause_stops_the_ticks_and_resume_starts_again_without_the_missed_ones(
    tasks_stack: LiveStack, http: httpx.Client
) -> None:
    owner = new_account(http)
    ticking = add_job(http, owner, interval={"seconds": 1}, action="llm.prompt", params={"prompt": "tic"})["id"]
    wait_for(lambda: _runs(http, owner, ticking) >= 2)
    root = admin(http)

    paused = http.post(f"/system/tasks/{ticking}/pause", headers=root.bearer).json()
    assert paused["status"] == "paused" and paused["enabled"] is False
    wait_for(lambda: job(http, owner, ticking)["running_count"] == 0)
    count = _runs(http, owner, ticking)
    time.sleep(2.5)
    assert _runs(http, owner, ticking) == count

    resumed = http.post(f"/jobs/{ticking}/update", json={"enabled": True}, headers=owner.bearer).json()
    assert resumed["enabled"] is True
    wait_for(lambda: _runs(http, owner, ticking) >= count + 2)
    triggers = {run["trigger"] for run in finished_runs(http, owner, ticking)}
    assert triggers == {"schedule"}  # the 2.5 s paused were not caught up
    http.delete(f"/jobs/{ticking}", headers=owner.bearer)


def test_a_failing_run_is_counted_and_its_error_kept(tasks_stack: LiveStack, http: httpx.Client) -> None:
    root = admin(http)
    action = _failing(tasks_stack)
    listener = Subscriber(tasks_stack.grpc_target, root.tokens["access_token"], ["task.*"])
    try:
        created = http.post(
            "/system/tasks", json={"type": "once", "action": action, "name": "Météo"}, headers=root.bearer
        ).json()
        failed = wait_for(lambda: (found := job(http, root, created["id"]))["status"] == "failed" and found)
        # An administrator hears every task's runs: this one's is among them.
        while (event := listener.next()).data["task_id"] != created["id"]:  # type: ignore[union-attr]
            pass
    finally:
        listener.close()

    assert (failed["failure_count"], failed["success_count"], failed["last_status"]) == (1, 0, "failed")
    assert failed["last_error"] == "the weather service did not answer"
    [run] = failed["history"]
    assert run["status"] == "failed" and run["error"] == "the weather service did not answer"
    assert [(step["name"], step["error"]) for step in run["steps"]] == [
        ("ask the weather", "the weather service did not answer"),
    ]
    data = json_format.MessageToDict(event.data)  # type: ignore[union-attr]
    assert event.event == "task.failed"  # type: ignore[union-attr]
    assert (data["task_id"], data["status"], data["name"]) == (created["id"], "failed", "Météo")
    assert data["result"]["error"] == "the weather service did not answer"


def test_cancel_stops_the_run_at_its_next_step(tasks_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    gate = Gate(tasks_stack, _unique("gate"))
    tasks_stack.server.tasks.registry.add(gate.action())
    job_id = add_job(http, owner, interval={"hours": 1}, action=gate.name, params={})["id"]

    http.post(f"/jobs/{job_id}/run-now", headers=owner.bearer)
    assert gate.entered.wait(10)
    asked = http.post(f"/jobs/{job_id}/cancel", headers=owner.bearer)
    assert asked.status_code == 200
    assert (asked.json()["cancel_requested"], asked.json()["status"]) == (True, "running")
    gate.open()

    stopped = wait_for(lambda: (found := job(http, owner, job_id))["cancel_requested"] is False and found)
    [run] = finished_runs(http, owner, job_id)
    assert run["status"] == "cancelled" and not gate.second_ran.is_set()
    # The step under way at the cancel ran to its end, unrecorded; none started after it.
    assert run["steps"] == []
    assert (stopped["status"], stopped["last_status"], stopped["failure_count"]) == ("scheduled", "cancelled", 0)


def test_a_one_time_job_cancelled_before_it_runs_never_runs(http: httpx.Client) -> None:
    owner = new_account(http)
    later = add_job(
        http, owner, type="once", run_at="2099-01-01T00:00:00Z", action="llm.prompt", params={"prompt": "x"}
    )

    cancelled = http.post(f"/jobs/{later['id']}/cancel", headers=owner.bearer).json()

    assert (cancelled["status"], cancelled["next_run"], cancelled["enabled"]) == ("cancelled", None, False)


def test_deleting_a_running_job_cancels_its_run(tasks_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    gate = Gate(tasks_stack, _unique("gate"))
    tasks_stack.server.tasks.registry.add(gate.action())
    job_id = add_job(http, owner, interval={"hours": 1}, action=gate.name, params={})["id"]
    http.post(f"/jobs/{job_id}/run-now", headers=owner.bearer)
    assert gate.entered.wait(10)

    assert http.delete(f"/jobs/{job_id}", headers=owner.bearer).status_code == 200
    gate.open()

    time.sleep(0.5)
    assert not gate.second_ran.is_set()
    assert http.get(f"/jobs/{job_id}", headers=owner.bearer).status_code == 404


def test_run_now_runs_a_paused_job_besides_its_schedule(http: httpx.Client) -> None:
    owner = new_account(http)
    job_id = add_job(http, owner, interval={"hours": 4}, enabled=False, action="llm.prompt", params={"prompt": "x"})[
        "id"
    ]
    assert job(http, owner, job_id)["status"] == "paused"

    started = http.post(f"/jobs/{job_id}/run-now", headers=owner.bearer).json()

    runs = wait_for(lambda: finished_runs(http, owner, job_id))
    assert [(run["id"], run["trigger"], run["status"]) for run in runs] == [(started["run_id"], "manual", "success")]
    assert job(http, owner, job_id)["status"] == "paused"


def test_task_completed_reaches_the_owner_on_xcores_ws_and_not_other_users(
    tasks_stack: LiveStack, http: httpx.Client
) -> None:
    owner, stranger = new_account(http), new_account(http)
    with (
        authenticated(tasks_stack.base_url, owner.tokens["access_token"]) as mine,
        authenticated(tasks_stack.base_url, stranger.tokens["access_token"]) as theirs,
    ):
        job_id = add_job(http, owner, type="once", action="llm.prompt", params={"prompt": "ping"})["id"]
        frame = receive(mine)
        assert (frame["event"], frame["data"]["task_id"], frame["data"]["status"]) == (
            "task.completed",
            job_id,
            "success",
        )
        assert frame["data"]["result"]["output"]["reply"]
        try:
            unexpected = receive(theirs, timeout=1)
        except TimeoutError:
            unexpected = None
    assert unexpected is None
