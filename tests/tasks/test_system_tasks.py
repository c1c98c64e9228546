"""xcore's /system/tasks and /manager/tasks: administrators' views of every task, the built-in
housekeeping included, in the documented shapes; /manager/health measures the scheduler."""

from __future__ import annotations

import httpx

from tests.identity.helpers import admin, new_account
from tests.tasks.support import SYSTEM_TASKS, account_with, add_job, finished_runs, wait_for

LISTED_FIELDS = {"id", "name", "type", "status", "schedule", "last_run", "next_run", "success_count", "failure_count"}


def test_system_tasks_list_the_builtin_housekeeping_first(http: httpx.Client) -> None:
    root = admin(http)
    user = new_account(http)
    theirs = add_job(http, user, interval={"hours": 3}, action="llm.prompt", params={"prompt": "hi"})["id"]

    body = http.get("/system/tasks", params={"limit": 100}, headers=root.bearer).json()

    assert set(body) >= {"total", "items"} and body["total"] >= 3
    assert set(body["items"][0]) >= LISTED_FIELDS
    builtin = [item for item in body["items"] if item["system"]]
    assert {item["id"] for item in builtin} == SYSTEM_TASKS
    assert body["items"][: len(builtin)] == builtin and all(item["owner_id"] is None for item in builtin)
    disk = next(item for item in builtin if item["id"] == "disk-usage")
    assert (disk["type"], disk["schedule"], disk["status"]) == ("interval", "every 30s", "scheduled")
    assert theirs in {item["id"] for item in body["items"]}
    mine = http.get("/system/tasks", params={"owner_id": user.user_id}, headers=root.bearer).json()
    assert [item["id"] for item in mine["items"]] == [theirs]


def test_create_run_pause_resume_change_and_delete_as_xcore_documents(http: httpx.Client) -> None:
    root = admin(http)
    body = {
        "id": "ma_tache",
        "name": "Ma Tâche",
        "type": "interval",
        "interval": {"hours": 1},
        "enabled": True,
        "action": "rag.reindex",
        "params": {"full": False},
    }

    created = http.post("/system/tasks", json=body, headers=root.bearer)
    assert created.status_code == 201, created.text
    assert {k: created.json()[k] for k in ("id", "name", "type", "status", "schedule")} == {
        "id": "ma_tache",
        "name": "Ma Tâche",
        "type": "interval",
        "status": "scheduled",
        "schedule": "every 1h",
    }
    assert http.post("/system/tasks", json=body, headers=root.bearer).status_code == 409

    run = http.post("/system/tasks/ma_tache/run", headers=root.bearer)
    assert run.status_code == 200
    assert {"id", "status", "started_at"} <= set(run.json()) and run.json()["status"] == "running"
    runs = wait_for(lambda: finished_runs(http, root, "ma_tache", "/system/tasks"))
    assert runs[0]["status"] == "success" and runs[0]["output"]["indexed"] == 0

    paused = http.post("/system/tasks/ma_tache/pause", headers=root.bearer)
    assert (paused.status_code, paused.json()["id"], paused.json()["status"]) == (200, "ma_tache", "paused")
    assert paused.json()["next_run"] is None
    resumed = http.post("/system/tasks/ma_tache/resume", headers=root.bearer)
    assert (resumed.json()["id"], resumed.json()["status"]) == ("ma_tache", "scheduled")
    assert resumed.json()["next_run"] is not None

    changed = http.patch("/system/tasks/ma_tache", json={"interval": {"minutes": 90}}, headers=root.bearer)
    assert changed.status_code == 200 and changed.json()["schedule"] == "every 1h30m"
    assert changed.json()["interval"] == {"days": 0, "hours": 1, "minutes": 30, "seconds": 0}

    detail = http.get("/manager/tasks/ma_tache", headers=root.bearer).json()
    assert detail["success_count"] == 1 and len(detail["history"]) == 1
    assert http.delete("/system/tasks/ma_tache", headers=root.bearer).json()["deleted"] is True
    assert http.get("/system/tasks/ma_tache", headers=root.bearer).status_code == 404


def test_the_manager_routes_name_tasks(http: httpx.Client) -> None:
    root = admin(http)
    http.post(
        "/system/tasks",
        json={"id": "nettoyage", "schedule": "0 0 * * *", "action": "rag.reindex", "params": {}},
        headers=root.bearer,
    )

    listed = http.get("/manager/tasks", headers=root.bearer).json()
    assert "nettoyage" in {item["id"] for item in listed["items"]}
    ran = http.post("/manager/tasks/nettoyage/run", headers=root.bearer)
    assert ran.status_code == 200 and ran.json()["status"] == "running"
    history = wait_for(lambda: finished_runs(http, root, "nettoyage", "/manager/tasks"))
    assert history[0]["steps"][0]["name"] == "reindex" and history[0]["duration_seconds"] >= 0
    detail = http.get("/manager/tasks/nettoyage", headers=root.bearer).json()
    assert detail["schedule"] == "0 0 * * *" and detail["next_run"].endswith("T00:00:00Z")

    assert http.delete("/manager/tasks/nettoyage", headers=root.bearer).status_code == 200
    assert http.get("/manager/tasks/nettoyage", headers=root.bearer).status_code == 404


def test_builtin_tasks_run_and_pause_but_are_not_deleted(http: httpx.Client) -> None:
    root = admin(http)

    ran = http.post("/manager/tasks/retrieval-cleanup/run", headers=root.bearer)
    assert ran.status_code == 200
    runs = wait_for(lambda: finished_runs(http, root, "retrieval-cleanup", "/system/tasks"))
    assert runs[0]["status"] == "success" and "cleared" in runs[0]["output"]

    refused = http.delete("/manager/tasks/retrieval-cleanup", headers=root.bearer)
    assert refused.status_code == 400 and refused.json()["code"] == "FAILED_PRECONDITION"
    changed = http.patch("/system/tasks/retrieval-cleanup", json={"interval": {"seconds": 5}}, headers=root.bearer)
    assert changed.status_code == 400
    assert http.post("/system/tasks/retrieval-cleanup/pause", headers=root.bearer).json()["status"] == "paused"
    assert http.post("/system/tasks/retrieval-cleanup/resume", headers=root.bearer).json()["status"] == "scheduled"


def test_administrators_routes_refuse_other_users(http: httpx.Client) -> None:
    user = new_account(http)
    for method, path in [
        ("GET", "/system/tasks"),
        ("GET", "/manager/tasks"),
        ("GET", "/manager/tasks/disk-usage"),
        ("POST", "/system/tasks"),
        ("POST", "/system/tasks/disk-usage/run"),
        ("POST", "/manager/tasks/disk-usage/run"),
        ("POST", "/system/tasks/disk-usage/pause"),
        ("POST", "/system/tasks/disk-usage/resume"),
        ("DELETE", "/manager/tasks/disk-usage"),
    ]:
        response = http.request(method, path, json={} if method == "POST" else None, headers=user.bearer)
        assert response.status_code == 403, (method, path)

    reader, _ = account_with(http, admin(http), ["tasks:read"])
    assert http.get("/system/tasks", headers=reader.bearer).status_code == 200
    assert http.post("/system/tasks/disk-usage/pause", headers=reader.bearer).status_code == 403


def test_actions_are_listed_with_their_schemas_for_what_the_caller_may_use(http: httpx.Client) -> None:
    root = admin(http)
    user = new_account(http)

    everything = http.get("/system/tasks/actions", headers=root.bearer).json()
    names = [action["name"] for action in everything["actions"]]
    assert everything["total"] == len(names) and {"rag.reindex", "backup.export", "llm.prompt"} <= set(names)
    assert not any(name.startswith("system.") for name in names)
    reindex = next(action for action in everything["actions"] if action["name"] == "rag.reindex")
    assert reindex["permission"] == "corpus:write" and reindex["source"] == "relais"
    assert reindex["params_schema"]["properties"]["full"] == {
        "type": "boolean",
        "default": True,
        "description": "Read every file again (true), or only new and changed ones (false).",
    }

    theirs = http.get("/jobs/actions", headers=user.bearer).json()
    offered = {action["name"] for action in theirs["actions"]}
    # (Other tests may have added actions anyone may use, such as tool.call.)
    assert "llm.prompt" in offered and not offered & {"rag.reindex", "backup.export"}
    assert http.get("/system/tasks/actions", headers=user.bearer).json() == theirs


def test_manager_health_reports_the_scheduler_as_measured(http: httpx.Client) -> None:
    user = new_account(http)
    assert http.get("/manager/health").status_code == 401

    body = http.get("/manager/health", headers=user.bearer).json()

    assert body["status"] == "healthy" and body["running"] is True
    assert (body["engine"], body["executors_alive"], body["late_runs"]) == ("dbos", 1, 0)
    assert body["engine_database"] in ("sqlite", "postgresql") and body["queue_depth"] == 0
    assert [executor["id"] for executor in body["executors"] if executor["alive"]] == [body["executor_id"]]
    assert {task["name"] for task in body["tasks"]} == SYSTEM_TASKS
    disk = next(task for task in body["tasks"] if task["name"] == "disk-usage")
    assert disk["runs"] >= 1 and disk["failures"] == 0 and disk["next_run"] > disk["last_run"]
    assert body["tasks_count"] >= 2 and body["enabled_count"] <= body["tasks_count"]
