"""What a run does, around its action: begin (the owner may still run it), the action's steps,
finish (history, counters, the event). This is the engine's `Runtime` for one server.

    begin   the task still exists and is enabled; the owner's account is active and still
            holds the action's permission; the params still fit its schema. Records the run as
            in progress. A refusal fails the run with a clear error. Not a checkpoint: a run
            resumed after a crash is checked again.
    action  its own steps (server/tasks/actions/).
    finish  not a step (it runs for cancelled runs too): counts the run once, keeps its error,
            publishes task.completed or task.failed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from server.auth import Principal
from server.errors import DomainError
from server.events import EventBus
from server.events.topics import TASK_COMPLETED, TASK_FAILED, TaskCompleted
from server.observability import SCHEDULER_RUNS
from server.storage import Database
from server.storage.models import utcnow
from server.tasks import repository
from server.tasks.actions import SYSTEM, ActionContext, ActionRegistry, StepRunner, summary
from server.tasks.engine import Engine, RunRequest, RuntimeGone, Steps, run_prefix, why_stopped
from server.tasks.models import Task, TaskRunning
from server.tasks.triggers import utc

log = logging.getLogger("relais.tasks")
T = TypeVar("T")

PrincipalLookup = Callable[[int], Awaitable[Principal | None]]
MAX_ERROR = 4000
# Finished runs beyond the history limit are deleted once this old: a planner running late
# never starts a tick again whose run was deleted.
PRUNE_GRACE_SECONDS = 600.0
PRUNE_EVERY = 10


class TaskRunFailed(Exception):
    """A run's failure as its history shows it (a plain message: it is stored, then read back)."""


def failure_text(error: BaseException) -> str:
    if isinstance(error, TaskRunFailed | DomainError):
        text = str(error.message if isinstance(error, DomainError) else error)
    else:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:MAX_ERROR]


class _PlainErrors(StepRunner):
    """Steps whose failures are recorded as TaskRunFailed(message), whatever raised."""

    def __init__(self, steps: Steps) -> None:
        self._steps = steps

    async def step(self, name: str, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def guarded(*values: Any) -> T:
            try:
                return await function(*values)
            except TaskRunFailed:
                raise
            except Exception as error:
                raise TaskRunFailed(failure_text(error)) from None

        return await self._steps.step(name, guarded, *args)


class TaskRuntime:
    def __init__(
        self,
        *,
        database: Database,
        registry: ActionRegistry,
        principals: PrincipalLookup,
        events: EventBus,
        deployment: str,
        history_limit: int,
        max_concurrent_runs: int = 32,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        # Runs this server executes at once; more wait (on the engine's loop) for a slot.
        self._slots = asyncio.Semaphore(max_concurrent_runs)
        self._database = database
        self._registry = registry
        self._principals = principals
        self._events = events
        self.deployment = deployment
        self._history_limit = history_limit
        self.engine: Engine | None = None
        # Seconds between a scheduled tick and the start of its run, for the latest runs begun here.
        self.lateness: collections.deque[float] = collections.deque(maxlen=10_000)
        self._background: set[asyncio.Task[None]] = set()
        # Runs begun on this replica and not finished yet.
        self.in_progress: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def executor_id(self) -> str:
        return self.engine.executor_id if self.engine else ""

    # ------------------------------------------------------------------ the run

    async def execute(self, request: RunRequest, run_id: str, steps: Steps) -> dict[str, Any]:
        async with self._slots:
            return await self._execute(request, run_id, steps)

    async def _execute(self, request: RunRequest, run_id: str, steps: Steps) -> dict[str, Any]:
        try:
            # Not a checkpoint: a run resumed after a crash checks its owner again.
            begun = await steps.call(self._begin, request, run_id)
            if begun.get("skipped"):
                return {"skipped": begun["skipped"]}
            action = self._registry.get(begun["action"])
            if action is None:
                raise TaskRunFailed(f"The action {begun['action']!r} is no longer available")
            context = ActionContext(
                params=begun["params"],
                principal=SYSTEM if begun["system"] else _principal(begun["owner"]),
                task_id=request.task_id,
                task_name=begun["name"],
                run_id=run_id,
                planned_at=request.planned_at,
                steps=_PlainErrors(steps),
            )
            output = summary(await action.run(context))
        except RuntimeGone:
            raise
        except Exception as error:
            message = failure_text(error)
            await steps.call(self._finish, request, run_id, "failed", {}, message)
            raise TaskRunFailed(message) from None
        except BaseException as error:
            # The engine's own stops (not Exceptions): a cancel, or the run taken over elsewhere.
            why = why_stopped(error)
            if why == "cancelled":
                await steps.call(self._finish, request, run_id, "cancelled", {}, "Cancelled")
            elif why == "lost":
                await steps.call(self._finish_if_cancelled, request, run_id)
            raise
        await steps.call(self._finish, request, run_id, "success", output, "")
        return output

    async def _begin(self, request: RunRequest, run_id: str) -> dict[str, Any]:
        """Check the run may go on (the task is there and enabled, its owner may run its action),
        and record it as in progress here. Raises TaskRunFailed with the reason it may not."""
        now = utcnow()
        async with self._database.sessions() as session, session.begin():
            task = await session.get(Task, request.task_id)
            if task is None or task.incarnation != request.incarnation:
                return {"skipped": "the task was deleted"}
            # A run begun before (resumed after a crash) goes on even if the task was paused since.
            running = await session.get(TaskRunning, run_id)
            if running is None and request.trigger != "manual" and (not task.enabled or task.finished):
                return {"skipped": "the task is paused" if not task.enabled else "the task has run"}
            state = task.current_state()
            state.last_run_at = now
            if request.trigger != "manual":
                previous = state.last_planned_at
                state.last_planned_at = max(utc(previous), request.planned_at) if previous else request.planned_at
            if running is None:
                session.add(TaskRunning(run_id=run_id, task_id=task.id, executor_id=self.executor_id, begun_at=now))
            else:
                running.executor_id = self.executor_id
            owner = SYSTEM if task.system else await self._owner(task)
            refusal = self._refusal(task, owner)
            begun = {
                "action": task.action,
                "params": json.loads(task.params),
                "owner": None if task.system or owner is None else _owner_record(owner),
                "system": task.system,
                "name": task.name,
            }
        if request.trigger != "manual" and running is None:
            self.lateness.append((now - request.planned_at).total_seconds())
        self._track(run_id, True)
        if refusal:
            raise TaskRunFailed(refusal)
        return begun

    async def _owner(self, task: Task) -> Principal | None:
        return await self._principals(task.owner_id) if task.owner_id is not None else None

    def _refusal(self, task: Task, owner: Principal | None) -> str:
        """Why the owner may not run this task's action now; empty when they may."""
        if owner is None:
            return "The task's owner account no longer exists or is deactivated"
        action = self._registry.get(task.action)
        if action is None or (action.system_only and not task.system):
            return f"The action {task.action!r} is no longer available"
        if action.permission and not owner.can(action.permission):
            return f"The owner no longer holds the permission {action.permission!r}, which {action.name} needs"
        violations = action.violations(json.loads(task.params))
        if violations:
            details = "; ".join(f"{v.field}: {v.message}" for v in violations)
            return f"The params no longer fit {action.name}'s schema: {details}"
        return ""

    async def _finish_if_cancelled(self, request: RunRequest, run_id: str) -> None:
        """A run that lost its ownership mid-step: cancelled if a cancel was asked (the engine
        has it so); otherwise another replica took it over and finishes it."""
        async with self._database.sessions() as session:
            task = await session.get(Task, request.task_id)
            cancelled = task is None or task.read_state().cancel_requested
        if cancelled:
            await self._finish(request, run_id, "cancelled", {}, "Cancelled")
        else:
            self._track(run_id, False)

    def _track(self, run_id: str, begun: bool) -> None:
        if begun:
            self.in_progress.add(run_id)
            self._idle.clear()
        else:
            self.in_progress.discard(run_id)
            if not self.in_progress:
                self._idle.set()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for the runs in progress here to finish."""
        if grace > 0 and self.in_progress:
            try:
                await asyncio.wait_for(self._idle.wait(), grace)
            except TimeoutError:
                log.warning("%d task runs still in progress at shutdown: they resume later", len(self.in_progress))

    async def _finish(self, request: RunRequest, run_id: str, status: str, output: dict[str, Any], error: str) -> None:
        self._track(run_id, False)
        async with self._database.sessions() as session, session.begin():
            await repository.forget_runs(session, [run_id])
            task = await session.get(Task, request.task_id)
            if task is None or task.incarnation != request.incarnation:
                return
            state = task.current_state()
            if status == "success" and state.cancel_requested:
                # Cancelled during its last step: the engine has it as cancelled.
                status, error = "cancelled", "Cancelled"
            if state.last_counted_run != run_id:
                state.success_count += status == "success"
                state.failure_count += status == "failed"
                state.last_counted_run = run_id
            state.last_status, state.last_error = status, error[:MAX_ERROR]
            if state.cancel_requested:
                state.cancel_requested = bool(await repository.count_running(session, task.id))
            if task.trigger == "once" and request.trigger != "manual":
                task.finished = status
            runs = state.success_count + state.failure_count
            SCHEDULER_RUNS.labels(task.action, status).inc()
            event = TaskCompleted(
                task_id=task.id,
                owner_id=task.owner_id or 0,
                name=task.name,
                status=status,
                result={"run_id": run_id, "output": output, "error": error[:MAX_ERROR]},
            )
        await self._events.publish(TASK_COMPLETED if status == "success" else TASK_FAILED, event)
        if runs % PRUNE_EVERY == 0:
            self._in_background(self.prune(request.task_id, request.incarnation))

    # ------------------------------------------------------------------ history

    async def prune(self, task_id: str, incarnation: str) -> None:
        """Delete the task's finished runs beyond the history limit (a while after they ended)."""
        if self.engine is None:
            return
        prefix = run_prefix(self.deployment, task_id, incarnation)
        old = await self.engine.runs(prefix, offset=self._history_limit, with_data=False)
        now = utcnow()
        doomed = [
            run.id
            for run in old
            if run.finished_at is not None and (now - run.finished_at).total_seconds() > PRUNE_GRACE_SECONDS
        ]
        await self.engine.delete(doomed)

    def _in_background(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.warning("task history pruning failed", exc_info=True)

        task = self.loop.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


def _owner_record(principal: Principal) -> dict[str, Any]:
    return {
        "subject": principal.subject,
        "user_id": principal.user_id,
        "roles": sorted(principal.roles),
        "permissions": sorted(principal.permissions),
    }


def _principal(record: dict[str, Any]) -> Principal:
    return Principal(
        subject=record["subject"],
        user_id=record["user_id"],
        roles=frozenset(record["roles"]),
        permissions=frozenset(record["permissions"]),
    )
