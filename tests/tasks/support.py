"""Helpers for the tasks tests: polling, accounts with permissions, in-test actions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from server.tasks.actions import Action, ActionContext
from tests.identity.helpers import Account, new_account
from tests.support.live import LiveStack

# The housekeeping every server schedules (server/app.py: RelaisServer._start_tasks).
SYSTEM_TASKS = {"retrieval-cleanup", "disk-usage", "plugins-reconcile", "idempotency-keys", "memory-trim"}

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, every: float = 0.05) -> T:
    """The first truthy value `check` returns; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s")
        time.sleep(every)


def account_with(http: httpx.Client, root: Account, permissions: list[str]) -> tuple[Account, int]:
    """A new user holding `permissions` through a role of their own; (account, role id)."""
    user = new_account(http)
    name = f"r-{user.email[5:15]}"
    role = http.post("/admin/roles", json={"name": name, "permissions": permissions}, headers=root.bearer)
    assert role.status_code == 201, role.text
    granted = http.post(f"/admin/users/{user.user_id}/roles/{role.json()['id']}", headers=root.bearer)
    assert granted.status_code < 300, granted.text
    return user, int(role.json()["id"])


def add_job(http: httpx.Client, account: Account, **body: Any) -> dict[str, Any]:
    response = http.post("/jobs/add", json=body, headers=account.bearer)
    assert response.status_code == 200, response.text
    return dict(response.json())


def job(http: httpx.Client, account: Account, job_id: str) -> dict[str, Any]:
    response = http.get(f"/jobs/{job_id}", headers=account.bearer)
    assert response.status_code == 200, response.text
    return dict(response.json())


def finished_runs(http: httpx.Client, account: Account, job_id: str, path: str = "/jobs") -> list[dict[str, Any]]:
    response = http.get(f"{path}/{job_id}", headers=account.bearer)
    assert response.status_code == 200, response.text
    return [run for run in response.json()["history"] if run["finished_at"] is not None]


class Gate:
    """A two-step action whose first step waits until the test opens the gate: a run to cancel
    mid-way. `second_ran` tells whether the run went past the step boundary."""

    def __init__(self, stack: LiveStack, name: str) -> None:
        self.name = name
        self.entered = threading.Event()
        self.second_ran = threading.Event()
        self._stack = stack
        self._open: asyncio.Event | None = None

    def action(self) -> Action:
        async def first() -> str:
            self._open = asyncio.Event()
            self.entered.set()
            await self._open.wait()
            return "first done"

        async def second() -> str:
            self.second_ran.set()
            return "second done"

        async def run(context: ActionContext) -> dict[str, Any]:
            await context.step("wait at the gate", first)
            await context.step("after the gate", second)
            return {"passed": True}

        return Action(
            name=self.name, description="Waits at a gate, then goes on.", params_schema={"type": "object"}, run=run
        )

    def open(self) -> None:
        async def opening() -> None:
            assert self._open is not None
            self._open.set()

        self._stack.run(opening())
