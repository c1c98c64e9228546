"""A run as the engine knows it: its request (the workflow's input), its id, and its record
(DBOS's workflow status and steps) as read back for the history.

    request = RunRequest(deployment="a1b2", task_id="nightly", incarnation="9f3e", trigger="schedule",
                         planned_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC))
    run_id(request) == "task:a1b2:nightly:9f3e:at:20240115T103000.000000Z"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS, StepInfo, WorkflowStatus

# Statuses of runs not finished yet.
ACTIVE = ["ENQUEUED", "PENDING", "DELAYED"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A workflow's input: which task, which incarnation of it, and which tick."""

    deployment: str
    task_id: str
    incarnation: str
    # "schedule", "manual" or "catch_up".
    trigger: str
    planned_at: datetime

    @property
    def run_id(self) -> str:
        return run_id(self)


def run_prefix(deployment: str, task_id: str | None = None, incarnation: str | None = None) -> str:
    """The common start of the run ids of a deployment, of a task, or of one incarnation of it."""
    parts = ["task", deployment]
    if task_id is not None:
        parts.append(task_id)
        if incarnation is not None:
            parts.append(incarnation)
    return ":".join(parts) + ":"


def run_id(request: RunRequest, *, executor: str | None = None, nonce: str | None = None) -> str:
    """task:<deployment>:<task>:<incarnation>:<trigger>:<UTC time>[:<executor or nonce>].

    Scheduled ticks and catch-ups of one tick share an id (a tick runs once, whoever plans it);
    a per-replica tick adds the replica, a manual run a nonce."""
    stamp = request.planned_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    kind = "at" if request.trigger in ("schedule", "catch_up") else request.trigger
    base = run_prefix(request.deployment, request.task_id, request.incarnation) + f"{kind}:{stamp}"
    suffix = executor or nonce
    return f"{base}:{suffix}" if suffix else base


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    index: int
    name: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """A run as DBOS keeps it."""

    id: str
    # DBOS's status: ENQUEUED, PENDING, SUCCESS, ERROR, CANCELLED...
    status: str
    request: RunRequest | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    output: Any
    error: str
    executor: str
    attempts: int
    steps: list[StepRecord] = field(default_factory=list)


def _moment(epoch_ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else None


async def list_runs(
    prefix: str, limit: int | None, offset: int | None, active_only: bool, with_steps: bool, with_data: bool
) -> list[RunRecord]:
    statuses = await DBOS.list_workflows_async(
        workflow_id_prefix=prefix,
        status=ACTIVE if active_only else None,
        sort_desc=True,
        limit=limit,
        offset=offset,
        load_input=with_data,
        load_output=with_data,
    )
    records = []
    for status in statuses:
        steps = await DBOS.list_workflow_steps_async(status.workflow_id) if with_steps else []
        records.append(_record(status, steps))
    return records


def _record(status: WorkflowStatus, steps: list[StepInfo]) -> RunRecord:
    """A workflow's status and steps as DBOS reports them, as a RunRecord."""
    inputs: dict[str, Any] = dict(status.input or {})
    args = inputs.get("args") or ()
    return RunRecord(
        id=status.workflow_id,
        status=str(status.status),
        request=args[0] if args and isinstance(args[0], RunRequest) else None,
        created_at=_moment(status.created_at),
        started_at=_moment(status.dequeued_at) or _moment(status.created_at),
        finished_at=_finished_at(status, steps),
        output=status.output,
        error=_error_text(status.error),
        executor=status.executor_id or "",
        attempts=int(status.recovery_attempts or 0),
        steps=[
            StepRecord(
                index=step["function_id"],
                name=step["function_name"],
                started_at=_moment(step["started_at_epoch_ms"]),
                finished_at=_moment(step["completed_at_epoch_ms"]),
                error=_error_text(step["error"]),
            )
            for step in steps
        ],
    )


def _finished_at(status: WorkflowStatus, steps: list[StepInfo]) -> datetime | None:
    # DBOS on SQLite keeps a workflow's times to the second; its steps', to the millisecond.
    finished = _moment(status.completed_at)
    step_ends = [end for step in steps if (end := _moment(step["completed_at_epoch_ms"])) is not None]
    if finished is not None and step_ends:
        finished = max(finished, *step_ends)
    return finished


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return ""
    return str(error) or type(error).__name__
