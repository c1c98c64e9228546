"""A task as the routes and the other domains see it: plain values read from its row while the
database session is open (never the row), plus what is measured (status, next run, runs in
progress) and, for one task, its last runs as the engine keeps them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.tasks.models import Task, TaskExecutor
from server.tasks.planner import trigger_of
from server.tasks.runs import RunRecord, StepRecord
from server.tasks.triggers import Trigger, utc
from server.views import copied

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
class TaskStateView:
    """What this instance's runs of a task did (all blank before its first run)."""

    success_count: int
    failure_count: int
    last_run_at: datetime | None
    last_planned_at: datetime | None
    last_status: str | None
    last_error: str
    cancel_requested: bool

    @classmethod
    def of(cls, task: Task) -> TaskStateView:
        # The state comes with the task (a joined relationship): no further query.
        return copied(cls, task.read_state())


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """A task's definition (its trigger's kind is `trigger.kind`; `params` decoded), its run
    bookkeeping, and what is measured when it is read."""

    id: str
    name: str
    description: str
    owner_id: int | None
    system: bool
    action: str
    params: dict[str, Any]
    enabled: bool
    # A one-time task's outcome once it ran: "success", "failed" or "cancelled".
    finished: str | None
    interval_seconds: int | None
    cron: str | None
    timezone: str
    created_at: datetime
    updated_at: datetime
    state: TaskStateView
    trigger: Trigger
    status: str
    next_run: datetime | None
    running_count: int
    history: list[RunView] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorView:
    """A replica's scheduler and its last heartbeat, as the health report shows it."""

    id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime

    @classmethod
    def of(cls, row: TaskExecutor) -> ExecutorView:
        return copied(cls, row)


def task_view(task: Task, *, running: int, now: datetime) -> TaskView:
    """The task as read now, from its row (in an open session: its state is read with it); its
    history is the engine's, added by who reads it."""
    trigger = trigger_of(task)
    return TaskView(
        id=task.id,
        name=task.name,
        description=task.description,
        owner_id=task.owner_id,
        system=task.system,
        action=task.action,
        params=json.loads(task.params),
        enabled=task.enabled,
        finished=task.finished,
        interval_seconds=task.interval_seconds,
        cron=task.cron,
        timezone=task.timezone,
        created_at=task.created_at,
        updated_at=task.updated_at,
        state=TaskStateView.of(task),
        trigger=trigger,
        status=_status(task, running),
        next_run=next_run(task, trigger, now),
        running_count=running,
    )


def _status(task: Task, running: int) -> str:
    """The task's own state first (a paused task whose last run is finishing is paused); then
    whether a run is in progress."""
    if task.finished:
        return {"success": "completed", "failed": "failed", "cancelled": "cancelled"}.get(task.finished, "completed")
    if not task.enabled:
        return "paused"
    return "running" if running else "scheduled"


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
