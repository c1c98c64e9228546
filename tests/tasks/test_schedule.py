"""Triggers firing on time in a running server, and the misfire policy across a restart: the
ticks missed while no replica ran are run once, not once per missed tick."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import POSTGRES_URL
from tests.identity.helpers import Account, admin, new_account
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.tasks.conftest import task_settings
from tests.tasks.support import add_job, finished_runs, wait_for

PROMPT = {"action": "llm.prompt", "params": {"prompt": "tic"}}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def scheduled(http: httpx.Client, account: Account, job_id: str, at_least: int, path: str = "/jobs") -> list[Any]:
    runs = wait_for(lambda: len(found := finished_runs(http, account, job_id, path)) >= at_least and found, 30)
    return sorted(runs, key=lambda run: run["planned_at"])


def test_an_interval_task_fires_every_interval_from_its_creation(http: httpx.Client) -> None:
    owner = new_account(http)
    # Two seconds apart: a planner stalled past one interval (a loaded CI runner) would run the
    # missed tick once, as a catch-up, which is right but not what this test looks at.
    created = add_job(http, owner, interval={"seconds": 2}, **PROMPT)

    runs = scheduled(http, owner, created["id"], 3)[:3]
    http.delete(f"/jobs/{created['id']}", headers=owner.bearer)

    anchor = moment(created["created_at"])
    assert [moment(run["planned_at"]) for run in runs] == [anchor + timedelta(seconds=n) for n in (2, 4, 6)]
    for run in runs:
        # Never early; and on time, as the planner judges it (a tick begun more than
        # tasks_late_after_seconds late would be a catch-up). How late is bench/tasks.py's.
        assert moment(run["started_at"]) >= moment(run["planned_at"]), run
        assert run["trigger"] == "schedule" and run["status"] == "success"


def test_a_cron_task_fires_at_its_expressions_times_in_its_time_zone(http: httpx.Client) -> None:
    owner = new_account(http)
    created = add_job(http, owner, schedule="*/2 * * * * *", timezone="Europe/Paris", **PROMPT)
    assert created["schedule"] == "*/2 * * * * * (Europe/Paris)"

    runs = scheduled(http, owner, created["id"], 2)[:2]
    http.delete(f"/jobs/{created['id']}", headers=owner.bearer)

    planned = [moment(run["planned_at"]) for run in runs]
    assert all(at.second % 2 == 0 and at.microsecond == 0 for at in planned)
    assert planned[1] - planned[0] == timedelta(seconds=2)
    assert all(moment(r["started_at"]) >= moment(r["planned_at"]) and r["trigger"] == "schedule" for r in runs)


def test_a_one_time_task_fires_at_its_time_and_never_again(http: httpx.Client) -> None:
    owner = new_account(http)
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    created = add_job(http, owner, type="once", run_at=at.isoformat().replace("+00:00", "Z"), **PROMPT)
    assert created["next_run"] == at.isoformat().replace("+00:00", "Z") and created["status"] == "scheduled"

    [run] = scheduled(http, owner, created["id"], 1)
    time.sleep(1.5)

    assert moment(run["planned_at"]) == at and moment(run["started_at"]) >= at
    assert len(finished_runs(http, owner, created["id"])) == 1


@pytest.fixture
def lone_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own (the session's stack would be a replica of the one it shares)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'relais.db'}"
        return
    schema = f"relais_lone_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{POSTGRES_URL}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}_dbos" CASCADE')


def test_ticks_missed_while_no_replica_ran_are_run_once(
    lone_database: str, task_triton: LiveTriton, tmp_path: Path
) -> None:
    url = lone_database
    settings = task_settings(tmp_path, url, task_triton)
    first = LiveStack(settings).start()  # type: ignore[arg-type]
    try:
        with httpx.Client(base_url=first.base_url, timeout=30) as http:
            root = admin(http)
            body = {"id": f"tick-{time.time_ns()}", "interval": {"seconds": 1}, **PROMPT}
            task_id = http.post("/system/tasks", json=body, headers=root.bearer).json()["id"]
            scheduled(http, root, task_id, 2, "/system/tasks")
    finally:
        first.stop()
    stopped_at = datetime.now(UTC)
    time.sleep(4)

    second = LiveStack(settings).start()  # type: ignore[arg-type]
    try:
        # Ticks up to the moment its planner started were missed: no planner ran.
        restarted = second.server.tasks.planner.started_at
        assert restarted is not None
        with httpx.Client(base_url=second.base_url, timeout=30) as http:
            root = admin(http)
            # The catch-up run, and a regular tick after it.
            wait_for(
                lambda: (
                    sum(
                        moment(r["planned_at"]) > stopped_at
                        for r in finished_runs(http, root, task_id, "/system/tasks")
                    )
                    >= 2
                )
            )
            runs = sorted(finished_runs(http, root, task_id, "/system/tasks"), key=lambda run: run["planned_at"])
    finally:
        second.stop()

    [caught_up] = [run for run in runs if run["trigger"] == "catch_up"]
    caught_at = moment(caught_up["planned_at"])
    assert caught_up["status"] == "success" and abs(caught_at - restarted) < timedelta(seconds=1)
    # The four seconds of ticks missed while no planner ran: one run.
    during = [run for run in runs if stopped_at < moment(run["planned_at"]) <= caught_at]
    assert during == [caught_up], [(run["planned_at"], run["trigger"]) for run in runs]
    planned = [moment(run["planned_at"]) for run in runs]
    assert len(planned) == len(set(planned)) and planned[-1] > caught_at
