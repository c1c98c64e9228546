"""A task as the routes show it: its row, plus what is measured (status, next run, runs in
progress) and, for one task, its last runs as the engine keeps them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.tasks.models import Task
from server.tasks.planner import trigger_of
from server.tasks.runs import RunRecord, StepRecord
from server.tasks.triggers import Trigger, utc

# DBOS's statuses → the run statuses of the contract.
RUN_STATUSES = {
    "ENQUEUED": "queued",
    "DELAYED": "queued",
    "PENDING": "running",
    "SUCCESS": "success",
    "ERROR": "failed",
    "CANCELLED": "cancelled",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    id: str
    status: str
    trigger: str
    planned_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float
    error: str
    output: dict[str, Any]
    executor: str
    # As the engine recorded them.
    steps: list[StepRecord]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    task: Task
    trigger: Trigger
    status: str
    next_run: datetime | None
    running_count: int
    params: dict[str, Any]
    history: list[RunView] = field(default_factory=list)


def task_view(task: Task, *, running: int, now: datetime, history: list[RunView] | None = None) -> TaskView:
    trigger = trigger_of(task)
    # The task's own state first (a paused task whose last run is finishing is paused); then
    # whether a run is in progress.
    if task.finished:
        status = {"success": "completed", "failed": "failed", "cancelled": "cancelled"}.get(task.finished, "completed")
    elif not task.enabled:
        status = "paused"
    elif running:
        status = "running"
    else:
        status = "scheduled"
    return TaskView(
        task=task,
        trigger=trigger,
        status=status,
        next_run=next_run(task, trigger, now),
        running_count=running,
        params=json.loads(task.params),
        history=history or [],
    )


def next_run(task: Task, trigger: Trigger, now: datetime) -> datetime | None:
    """The next planned run: a tick due but not begun yet, else the next tick."""
    if not task.enabled or task.finished:
        return None
    last = task.read_state().last_planned_at
    begun = utc(last) if last else None
    if trigger.kind == "once":
        return trigger.planned_once if begun is None else None
    due = trigger.last_at_or_before(now)
    if due is not None and (begun is None or due > begun) and not task.every_replica:
        return due
    return trigger.next_after(now)


def run_view(record: RunRecord, *, now: datetime) -> RunView | None:
    """A run as the history shows it; None for a tick that found nothing to do (task paused)."""
    output = record.output if isinstance(record.output, dict) else {}
    if record.status == "SUCCESS" and "skipped" in output:
        return None
    status = RUN_STATUSES.get(record.status, "failed")
    started = record.steps[0].started_at if record.steps and record.steps[0].started_at else record.started_at
    end = record.finished_at or now
    request = record.request
    return RunView(
        id=record.id,
        status=status,
        trigger=request.trigger if request else "schedule",
        planned_at=request.planned_at if request else None,
        started_at=started,
        finished_at=record.finished_at,
        duration_seconds=max(0.0, (end - started).total_seconds()) if started else 0.0,
        error=record.error if status in ("failed", "cancelled") else "",
        output=output if status == "success" else {},
        executor=record.executor,
        steps=list(record.steps),
    )
