"""A task runs with its owner's permissions as they are when it runs: what they lost since
its creation is refused then, with a clear error, and counted as a failed run."""

from __future__ import annotations

import httpx

from tests.identity.helpers import admin, new_account
from tests.tasks.support import account_with, add_job, finished_runs, job, wait_for

LOST = "The owner no longer holds the permission 'corpus:write', which rag.reindex needs"


def test_creating_a_job_needs_the_actions_permission(http: httpx.Client) -> None:
    user = new_account(http)

    refused = http.post("/jobs/add", json={"interval": {"hours": 1}, "action": "rag.reindex"}, headers=user.bearer)

    assert refused.status_code == 422
    [detail] = refused.json()["error"]["details"]
    assert detail["field"] == "action" and "corpus:write" in detail["message"]


def test_a_job_whose_owner_lost_the_permission_fails_with_a_clear_error(http: httpx.Client) -> None:
    root = admin(http)
    indexer, role_id = account_with(http, root, ["corpus:write"])
    job_id = add_job(http, indexer, interval={"hours": 6}, action="rag.reindex", params={"full": False})["id"]
    http.post(f"/jobs/{job_id}/run-now", headers=indexer.bearer)
    assert wait_for(lambda: finished_runs(http, indexer, job_id))[0]["status"] == "success"

    removed = http.delete(f"/admin/users/{indexer.user_id}/roles/{role_id}", headers=root.bearer)
    assert removed.status_code < 300
    own_try = http.post(f"/jobs/{job_id}/run-now", headers=indexer.bearer)
    assert own_try.status_code == 403
    http.post(f"/system/tasks/{job_id}/run", headers=root.bearer)  # an administrator's run: still as the owner

    failed = wait_for(lambda: (found := job(http, indexer, job_id))["failure_count"] == 1 and found)
    assert (failed["success_count"], failed["last_status"], failed["last_error"]) == (1, "failed", LOST)
    newest = failed["history"][0]
    assert newest["status"] == "failed" and newest["error"] == LOST
    assert newest["steps"] == []  # refused before any step


def test_a_deactivated_owners_job_fails_and_a_deleted_owners_job_goes(http: httpx.Client) -> None:
    root = admin(http)
    owner = new_account(http)
    job_id = add_job(http, owner, interval={"hours": 6}, action="llm.prompt", params={"prompt": "x"})["id"]

    assert http.post(f"/admin/users/{owner.user_id}/deactivate", headers=root.bearer).status_code == 200
    http.post(f"/system/tasks/{job_id}/run", headers=root.bearer)
    failed = wait_for(
        lambda: (found := http.get(f"/system/tasks/{job_id}", headers=root.bearer).json())["failure_count"] and found
    )
    assert failed["last_error"] == "The task's owner account no longer exists or is deactivated"

    assert http.delete(f"/admin/users/{owner.user_id}", headers=root.bearer).status_code < 300
    assert http.get(f"/system/tasks/{job_id}", headers=root.bearer).status_code == 404


def test_an_administrator_sees_and_runs_every_users_job_as_its_owner(http: httpx.Client) -> None:
    root = admin(http)
    owner = new_account(http)
    job_id = add_job(http, owner, interval={"hours": 6}, action="llm.prompt", params={"prompt": "coucou"})["id"]

    listed = http.get("/system/tasks", params={"owner_id": owner.user_id}, headers=root.bearer).json()
    assert [item["id"] for item in listed["items"]] == [job_id] and listed["items"][0]["owner_id"] == owner.user_id
    http.post(f"/manager/tasks/{job_id}/run", headers=root.bearer)

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))
    chat = http.get(f"/api/chats/{run['output']['chat_id']}", headers=owner.bearer)
    assert chat.status_code == 200  # the conversation is the owner's, not the administrator's
    assert http.get("/system/tasks", headers=owner.bearer).status_code == 403
