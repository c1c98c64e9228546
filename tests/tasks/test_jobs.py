"""The local assistant's /jobs, as its document describes them: the caller's own tasks, with
the access_token cookie and X-CSRF-Token on every unsafe call, or a bearer token."""

from __future__ import annotations

import httpx

from tests.identity.helpers import PASSWORD, new_account, register, unique_email
from tests.support.live import LiveStack
from tests.tasks.support import add_job, finished_runs, job, wait_for

PROMPT = {"action": "llm.prompt", "params": {"prompt": "Résume la journée"}}


def test_every_jobs_route_with_the_cookie_and_its_csrf_token(tasks_stack: LiveStack) -> None:
    with httpx.Client(base_url=tasks_stack.base_url, timeout=30) as browser:
        email = unique_email()
        register(browser, email)
        csrf = {
            "X-CSRF-Token": browser.post("/auth/login", json={"email": email, "password": PASSWORD}).json()[
                "csrf_token"
            ]
        }
        body = {"name": "Résumé quotidien", "interval": {"hours": 1}, **PROMPT}

        refused = browser.post("/jobs/add", json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "CSRF_ERROR"
        assert browser.get("/jobs").json()["total"] == 0

        added = browser.post("/jobs/add", json=body, headers=csrf)
        assert added.status_code == 200, added.text
        job_id = added.json()["id"]
        assert added.json()["status"] == "scheduled" and added.json()["schedule"] == "every 1h"

        listed = browser.get("/jobs").json()
        assert listed["total"] == 1 and [item["id"] for item in listed["items"]] == [job_id]

        detail = browser.get(f"/jobs/{job_id}").json()
        assert detail["cancel_requested"] is False and detail["type"] == "interval" and detail["history"] == []
        assert detail["params"] == {"prompt": "Résume la journée"} and detail["next_run"] is not None

        assert browser.post(f"/jobs/{job_id}/run-now").status_code == 403
        started = browser.post(f"/jobs/{job_id}/run-now", headers=csrf)
        assert started.status_code == 200
        assert started.json()["id"] == job_id and started.json()["status"] == "running"
        assert started.json()["started_at"].endswith("Z") and started.json()["run_id"]

        runs = wait_for(lambda: [r for r in browser.get(f"/jobs/{job_id}").json()["history"] if r["finished_at"]])
        assert runs[0]["status"] == "success" and runs[0]["trigger"] == "manual"
        assert runs[0]["output"]["reply"] and runs[0]["id"] == started.json()["run_id"]
        assert [step["name"] for step in runs[0]["steps"]] == ["conversation", "reply"]

        changed = browser.post(
            f"/jobs/{job_id}/update",
            json={"schedule": "0 9 * * 1-5", "timezone": "Europe/Paris", "params": {"prompt": "Et demain ?"}},
            headers=csrf,
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["type"], changed.json()["schedule"]) == ("cron", "0 9 * * 1-5 (Europe/Paris)")
        assert changed.json()["params"] == {"prompt": "Et demain ?"} and changed.json()["success_count"] == 1

        nothing_running = browser.post(f"/jobs/{job_id}/cancel", headers=csrf)
        assert nothing_running.status_code == 400 and nothing_running.json()["code"] == "FAILED_PRECONDITION"

        assert browser.delete(f"/jobs/{job_id}").status_code == 403
        deleted = browser.delete(f"/jobs/{job_id}", headers=csrf)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert browser.get(f"/jobs/{job_id}").status_code == 404
        assert browser.get("/jobs").json()["total"] == 0


def test_a_user_can_neither_see_nor_touch_another_users_job(http: httpx.Client) -> None:
    alice, bob = new_account(http), new_account(http)
    alices = add_job(http, alice, interval={"hours": 2}, **PROMPT)["id"]

    assert http.get("/jobs", headers=bob.bearer).json()["total"] == 0
    for method, path, body in [
        ("GET", f"/jobs/{alices}", None),
        ("POST", f"/jobs/{alices}/run-now", None),
        ("POST", f"/jobs/{alices}/update", {"enabled": False}),
        ("POST", f"/jobs/{alices}/cancel", None),
        ("DELETE", f"/jobs/{alices}", None),
    ]:
        response = http.request(method, path, json=body, headers=bob.bearer)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "NOT_FOUND"

    # Nothing of hers changed, and bob's id space does not reach hers.
    assert job(http, alice, alices)["enabled"] is True and job(http, alice, alices)["history"] == []
    assert (
        http.post("/jobs/add", json={"id": alices, "interval": {"hours": 1}, **PROMPT}, headers=bob.bearer).status_code
        == 409
    )


def test_jobs_page_with_skip_and_limit(http: httpx.Client) -> None:
    owner = new_account(http)
    ids = [add_job(http, owner, interval={"minutes": 30 + n}, **PROMPT)["id"] for n in range(3)]

    first = http.get("/jobs", params={"limit": 2}, headers=owner.bearer).json()
    rest = http.get("/jobs", params={"limit": 2, "skip": 2}, headers=owner.bearer).json()

    assert first["total"] == rest["total"] == 3 and first["has_more"] is True and rest["has_more"] is False
    assert [item["id"] for item in first["items"] + rest["items"]] == list(reversed(ids))


def test_a_one_time_job_runs_once_and_completes(http: httpx.Client) -> None:
    owner = new_account(http)
    once = add_job(http, owner, type="once", **PROMPT)

    done = wait_for(lambda: (found := job(http, owner, once["id"]))["status"] == "completed" and found)

    assert done["success_count"] == 1 and done["next_run"] is None and done["last_status"] == "success"
    assert [run["trigger"] for run in finished_runs(http, owner, once["id"])] == ["schedule"]
