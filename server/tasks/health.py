"""The scheduler's state for GET /manager/health, measured when asked: is this replica's
scheduler alive, which replicas beat, how many runs wait or run, how many ticks are late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from server.storage import Database
from server.storage.models import utcnow
from server.tasks import repository
from server.tasks.engine import Engine, run_prefix
from server.tasks.executors import Executors
from server.tasks.models import Task
from server.tasks.planner import Planner, trigger_of
from server.tasks.triggers import utc
from server.tasks.views import ExecutorView, TaskStateView, next_run


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemTaskState:
    """A built-in task as the health report shows it: its id, interval and run bookkeeping."""

    id: str
    interval_seconds: int | None
    state: TaskStateView
    next_run: datetime | None

    @classmethod
    def of(cls, task: Task, now: datetime) -> SystemTaskState:
        """The task as read now, from its row (in an open session: its state is read with it)."""
        return cls(
            id=task.id,
            interval_seconds=task.interval_seconds,
            state=TaskStateView.of(task),
            next_run=next_run(task, trigger_of(task), now),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerHealth:
    running: bool
    started_at: datetime | None
    uptime_seconds: int
    engine: str
    engine_database: str
    executor_id: str
    executors: list[tuple[ExecutorView, bool]]
    tasks_count: int
    enabled_count: int
    running_count: int
    failures: int
    queue_depth: int
    late_runs: int
    late_after_seconds: float
    system_tasks: list[SystemTaskState]

    @property
    def healthy(self) -> bool:
        failed = any(task.state.last_status == "failed" for task in self.system_tasks)
        return self.running and self.late_runs == 0 and not failed

    @property
    def executors_alive(self) -> int:
        return sum(alive for _, alive in self.executors)


async def measure(
    *,
    database: Database,
    engine: Engine,
    planner: Planner,
    executors: Executors,
    deployment: str,
    late_after_seconds: float,
) -> SchedulerHealth:
    now = utcnow()
    async with database.sessions() as session:
        total = await repository.count_tasks(session)
        failures = await repository.total_failures(session)
        enabled = await repository.enabled(session)
        system = [SystemTaskState.of(task, now) for task in await repository.system_tasks(session)]
        running = await repository.count_running(session)
    states = await executors.states()
    active = await engine.runs(run_prefix(deployment), active_only=True, with_data=False) if engine.running else []
    return SchedulerHealth(
        running=planner.alive and executors.alive and engine.running,
        started_at=planner.started_at,
        uptime_seconds=planner.uptime_seconds,
        engine="dbos",
        engine_database=engine.config.dialect,
        executor_id=engine.executor_id,
        executors=states,
        tasks_count=total,
        enabled_count=len(enabled),
        running_count=running,
        failures=failures,
        queue_depth=sum(run.status == "ENQUEUED" for run in active),
        late_runs=sum(_late(task, now - timedelta(seconds=late_after_seconds)) for task in enabled),
        late_after_seconds=late_after_seconds,
        system_tasks=system,
    )


def _late(task: Task, deadline: datetime) -> bool:
    """A tick due before `deadline` that no run has begun for."""
    if task.every_replica:
        return False
    trigger = trigger_of(task)
    due = trigger.last_at_or_before(deadline)
    if due is None:
        return False
    last = task.read_state().last_planned_at
    begun = utc(last) if last else None
    return begun is None or due > begun
