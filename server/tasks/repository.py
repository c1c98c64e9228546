"""Queries of the tasks domain. Functions take an open session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, desc, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.tasks.models import Task, TaskExecutor, TaskRunning, TaskState


def tasks(owner_id: int | None = None) -> Select[tuple[Task]]:
    """Every task (or one owner's): built-in ones first, then newest first."""
    statement = select(Task)
    if owner_id is not None:
        statement = statement.where(Task.owner_id == owner_id)
    return statement.order_by(desc(Task.system), desc(Task.created_at), Task.id)


async def enabled(session: AsyncSession) -> list[Task]:
    """The tasks a planner plans: enabled, and (one-time tasks) not finished."""
    rows = await session.scalars(select(Task).where(Task.enabled.is_(True), Task.finished.is_(None)))
    return list(rows)


async def fingerprint(session: AsyncSession) -> tuple[int, datetime | None]:
    """(how many tasks, latest definition change): when it moves, planners reload."""
    row = (await session.execute(select(func.count(), func.max(Task.updated_at)))).one()
    return int(row[0] or 0), row[1]


async def count_tasks(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Task)) or 0)


async def total_failures(session: AsyncSession) -> int:
    """The failed runs of every task, as their states count them."""
    return int(await session.scalar(select(func.sum(TaskState.failure_count))) or 0)


async def system_tasks(session: AsyncSession) -> list[Task]:
    return list(await session.scalars(select(Task).where(Task.system.is_(True)).order_by(Task.id)))


async def count_running(session: AsyncSession, task_id: str | None = None) -> int:
    """How many runs are in progress (of one task's, or of every task's)."""
    statement = select(func.count()).select_from(TaskRunning)
    if task_id is not None:
        statement = statement.where(TaskRunning.task_id == task_id)
    return int(await session.scalar(statement) or 0)


async def running_counts(session: AsyncSession, task_ids: Sequence[str]) -> dict[str, int]:
    if not task_ids:
        return {}
    rows = await session.execute(
        select(TaskRunning.task_id, func.count())
        .where(TaskRunning.task_id.in_(list(task_ids)))
        .group_by(TaskRunning.task_id)
    )
    return {task_id: int(number) for task_id, number in rows.all()}


async def running(session: AsyncSession, task_id: str | None = None) -> list[TaskRunning]:
    statement = select(TaskRunning)
    if task_id is not None:
        statement = statement.where(TaskRunning.task_id == task_id)
    return list(await session.scalars(statement))


async def forget_runs(session: AsyncSession, run_ids: Sequence[str]) -> None:
    if run_ids:
        await session.execute(delete(TaskRunning).where(TaskRunning.run_id.in_(list(run_ids))))


async def clear_stale_cancels(session: AsyncSession) -> None:
    """cancel_requested falls back once no run of the task is in progress any more."""
    busy = select(TaskRunning.task_id)
    await session.execute(
        update(TaskState)
        .where(TaskState.cancel_requested.is_(True), TaskState.task_id.not_in(busy))
        .values(cancel_requested=False)
    )


async def executors(session: AsyncSession) -> list[TaskExecutor]:
    return list(await session.scalars(select(TaskExecutor).order_by(TaskExecutor.started_at)))


async def heartbeat(session: AsyncSession, executor: TaskExecutor, now: datetime) -> None:
    row = await session.get(TaskExecutor, executor.id)
    if row is None:
        session.add(executor)
    else:
        row.seen_at = now


async def forget_executors(session: AsyncSession, ids: Sequence[str]) -> None:
    if ids:
        await session.execute(delete(TaskExecutor).where(TaskExecutor.id.in_(list(ids))))
