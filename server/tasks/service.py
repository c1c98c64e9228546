"""Tasks: create, read, change, run, pause, cancel and delete them, for their owner (/jobs) or
for administrators (/manager/tasks, /system/tasks).

    tasks = TaskService(database, registry, domain)
    view = await tasks.create(principal, Draft(action="rag.reindex", interval=Interval(hours=1)))
    await tasks.run_now(principal, view.id)            # as the owner (others: 404)
    await tasks.run_now(principal, view.id, admin=True)

`admin=True` is how the administrators' routes ask: every task is visible to them. A bad
draft is refused whole (every bad field named) before anything is stored.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Principal
from server.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from server.paging import Page, page_window
from server.storage import Database
from server.storage.models import utcnow
from server.storage.queries import page_of
from server.tasks import repository
from server.tasks.actions import Action, ActionRegistry
from server.tasks.engine import Engine, RunRequest, run_id, run_prefix
from server.tasks.models import Task, blank_state
from server.tasks.triggers import (
    KINDS,
    cron_violations,
    interval_violations,
    timezone_violations,
    utc,
)
from server.tasks.views import TaskView, run_view, task_view

TASK_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PARAMS_BYTES = 64 * 1024
# A one-time task may name a time this far in the past (clocks differ); it then runs at once.
PAST_GRACE = timedelta(seconds=60)
# Built-in tasks: their incarnation, and the epoch their ticks are counted from.
BUILTIN = "builtin"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @property
    def total(self) -> int:
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60 + self.seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerDraft:
    """A trigger as a request gives it; `kind` may be empty (then guessed from the fields)."""

    kind: str = ""
    interval: Interval | None = None
    cron: str = ""
    timezone: str = ""
    run_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    trigger: TriggerDraft = field(default_factory=TriggerDraft)
    id: str = ""
    name: str = ""
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    """What an update changes; None means "keep"."""

    trigger: TriggerDraft | None = None
    params: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted:
    task_id: str
    run_id: str
    started_at: datetime


class SchedulerHandle(Protocol):
    """The running parts a service needs (server/tasks/domain.py)."""

    deployment: str
    history_limit: int

    @property
    def engine(self) -> Engine: ...

    def changed(self) -> None:
        """A task's definition changed: plan again now."""


class TaskService:
    def __init__(self, database: Database, registry: ActionRegistry, scheduler: SchedulerHandle) -> None:
        self._database = database
        self._registry = registry
        self._scheduler = scheduler

    # ------------------------------------------------------------------ reading

    async def list_tasks(
        self, principal: Principal, *, skip: int, offset: int, limit: int, admin: bool, owner_id: int | None = None
    ) -> Page[TaskView]:
        skip, limit = page_window(skip=skip, offset=offset, limit=limit)
        owner = owner_id if admin else _user_id(principal)
        statement = repository.tasks(owner)
        async with self._database.sessions() as session:
            page = await page_of(session, statement, skip=skip, limit=limit)
            running = await repository.running_counts(session, [row.id for row in page.items])
            now = utcnow()
            return page.map(lambda row: task_view(row, running=running.get(row.id, 0), now=now))

    async def get(self, principal: Principal, task_id: str, *, admin: bool) -> TaskView:
        async with self._database.sessions() as session:
            task = await self._visible(session, principal, task_id, admin=admin)
            running = (await repository.running_counts(session, [task.id])).get(task.id, 0)
            now = utcnow()
            view = task_view(task, running=running, now=now)
            prefix = run_prefix(self._scheduler.deployment, task.id, task.incarnation)
        # The engine's history, read with no session held.
        records = await self._scheduler.engine.runs(prefix, limit=self._scheduler.history_limit, with_steps=True)
        history = [run for record in records if (run := run_view(record, now=now)) is not None]
        return replace(view, history=history)

    def actions(self, principal: Principal) -> list[Action]:
        return self._registry.available_to(principal)

    # ------------------------------------------------------------------ writing

    async def create(self, principal: Principal, draft: Draft) -> TaskView:
        owner = _user_id(principal)
        now = utcnow()
        violations = _identity_violations(draft.id, draft.name, draft.description)
        columns, trigger_problems = _trigger_columns(draft.trigger, now)
        violations += trigger_problems
        violations += await self._action_violations(principal, draft.action, draft.params)
        if violations:
            raise ValidationFailed(violations)
        task_id = draft.id or _new_id(draft.action)
        task = Task(
            id=task_id,
            state=blank_state(task_id),
            name=draft.name.strip() or draft.action.strip(),
            description=draft.description.strip(),
            owner_id=owner,
            system=False,
            every_replica=False,
            incarnation=secrets.token_hex(4),
            action=draft.action.strip(),
            params=json.dumps(draft.params, separators=(",", ":")),
            enabled=draft.enabled,
            created_at=now,
            updated_at=now,
            **columns,
        )
        async with self._database.sessions() as session, session.begin():
            if await session.get(Task, task.id) is not None:
                raise AlreadyExists(f"A task {task.id!r} exists already")
            session.add(task)
            await session.flush()  # the row as stored (its state's defaults), for the view
            view = task_view(task, running=0, now=now)
        self._scheduler.changed()
        return view

    async def update(self, principal: Principal, task_id: str, changes: Changes, *, admin: bool) -> TaskView:
        now = utcnow()
        async with self._database.sessions() as session, session.begin():
            task = await self._visible(session, principal, task_id, admin=admin)
            if task.system:
                raise FailedPrecondition(
                    "Built-in tasks take their schedule from the server's settings; pause or resume them"
                )
            violations = _identity_violations("", changes.name or "", changes.description or "")
            columns: dict[str, Any] = {}
            if changes.trigger is not None:
                columns, problems = _trigger_columns(changes.trigger, now)
                violations += problems
            if changes.params is not None:
                owner = principal if not admin or task.owner_id == principal.user_id else None
                violations += await self._params_violations(task.action, changes.params, owner)
            if violations:
                raise ValidationFailed(violations)
            self._apply(task, changes, columns, now)
        self._scheduler.changed()
        return await self.get(principal, task_id, admin=admin)

    @staticmethod
    def _apply(task: Task, changes: Changes, columns: dict[str, Any], now: datetime) -> None:
        for name, value in columns.items():
            setattr(task, name, value)
        if columns:
            # A new trigger: a one-time task that ran may run again, at its new time.
            task.finished = None
            task.current_state().last_planned_at = None
        if changes.params is not None:
            task.params = json.dumps(changes.params, separators=(",", ":"))
        if changes.name is not None and changes.name.strip():
            task.name = changes.name.strip()
        if changes.description is not None:
            task.description = changes.description.strip()
        if changes.enabled is not None and changes.enabled != task.enabled:
            task.enabled = changes.enabled
            task.anchor_at = now
        task.updated_at = now

    async def set_enabled(self, principal: Principal, task_id: str, enabled: bool, *, admin: bool) -> TaskView:
        """Pause, or resume from now on (ticks missed while paused are not run)."""
        now = utcnow()
        async with self._database.sessions() as session, session.begin():
            task = await self._visible(session, principal, task_id, admin=admin)
            if task.enabled != enabled:
                task.enabled, task.anchor_at, task.updated_at = enabled, now, now
        self._scheduler.changed()
        return await self.get(principal, task_id, admin=admin)

    async def run_now(self, principal: Principal, task_id: str, *, admin: bool) -> RunStarted:
        async with self._database.sessions() as session:
            task = await self._visible(session, principal, task_id, admin=admin)
        action = self._registry.get(task.action)
        if not admin and action is not None and not action.allowed(principal):
            raise PermissionDenied(f"Running {task.action} needs the permission {action.permission!r}")
        now = utcnow()
        request = RunRequest(
            deployment=self._scheduler.deployment,
            task_id=task.id,
            incarnation=task.incarnation,
            trigger="manual",
            planned_at=now,
        )
        identifier = run_id(request, nonce=secrets.token_hex(4))
        await self._scheduler.engine.start(request, run=identifier)
        return RunStarted(task_id=task.id, run_id=identifier, started_at=now)

    async def cancel(self, principal: Principal, task_id: str, *, admin: bool) -> TaskView:
        """Stop the task's runs at their next step; a one-time task that has not run will not."""
        async with self._database.sessions() as session:
            task = await self._visible(session, principal, task_id, admin=admin)
            running = await repository.running(session, task.id)
        active = await self._scheduler.engine.runs(
            run_prefix(self._scheduler.deployment, task.id, task.incarnation), active_only=True, with_data=False
        )
        pending_once = task.trigger == "once" and task.finished is None and task.read_state().last_planned_at is None
        if not active and not running and not pending_once:
            raise FailedPrecondition(f"Task {task_id!r} has no run in progress to cancel")
        async with self._database.sessions() as session, session.begin():
            current = await self._visible(session, principal, task_id, admin=admin)
            current.current_state().cancel_requested = bool(active or running)
            if pending_once and not active:
                current.finished, current.enabled, current.updated_at = "cancelled", False, utcnow()
        await self._scheduler.engine.cancel([run.id for run in active])
        self._scheduler.changed()
        return await self.get(principal, task_id, admin=admin)

    async def delete(self, principal: Principal, task_id: str, *, admin: bool) -> None:
        async with self._database.sessions() as session, session.begin():
            task = await self._visible(session, principal, task_id, admin=admin)
            if task.system:
                raise FailedPrecondition("Built-in tasks cannot be deleted; pause them instead")
            await session.delete(task)
        engine = self._scheduler.engine
        runs = await engine.runs(run_prefix(self._scheduler.deployment, task.id, task.incarnation), with_data=False)
        await engine.cancel([run.id for run in runs if run.status in ("ENQUEUED", "PENDING", "DELAYED")])
        await engine.delete([run.id for run in runs])
        self._scheduler.changed()

    async def ensure_system_task(
        self, task_id: str, *, name: str, action: str, interval_seconds: int, every_replica: bool = False
    ) -> None:
        """Create a built-in task, or bring its schedule in line with the settings.

        Its row is the same on every instance (ticks counted from a fixed epoch), so backups of
        two instances agree on it; what its runs did is in task_state, this instance's."""
        async with self._database.sessions() as session, session.begin():
            task = await session.get(Task, task_id)
            if task is None:
                session.add(
                    Task(
                        id=task_id,
                        state=blank_state(task_id),
                        name=name,
                        description="",
                        owner_id=None,
                        system=True,
                        every_replica=every_replica,
                        incarnation=BUILTIN,
                        trigger="interval",
                        interval_seconds=interval_seconds,
                        timezone="UTC",
                        anchor_at=EPOCH,
                        action=action,
                        params="{}",
                        enabled=True,
                        created_at=EPOCH,
                        updated_at=EPOCH,
                    )
                )
                return
            wanted = (interval_seconds, action, every_replica, name)
            if (task.interval_seconds, task.action, task.every_replica, task.name) != wanted:
                task.interval_seconds, task.action, task.every_replica, task.name = wanted
                task.trigger, task.updated_at = "interval", utcnow()

    # ------------------------------------------------------------------ checks

    async def _visible(self, session: AsyncSession, principal: Principal, task_id: str, *, admin: bool) -> Task:
        task = await session.get(Task, task_id) if task_id else None
        # Someone else's task does not exist, as far as the caller can tell.
        if task is None or (not admin and task.owner_id != _user_id(principal)):
            raise NotFound(f"No task {task_id[:64]!r}")
        return task

    async def _action_violations(self, principal: Principal, name: str, params: dict[str, Any]) -> list[FieldViolation]:
        try:
            action = self._registry.checked(name, params, principal)
        except ValidationFailed as error:
            return list(error.violations)
        return await self._check(action, params, principal)

    async def _params_violations(
        self, name: str, params: dict[str, Any], owner: Principal | None
    ) -> list[FieldViolation]:
        action = self._registry.get(name)
        if action is None:
            return [FieldViolation(field="action", message=f"the action {name!r} is no longer available")]
        violations = action.violations(params)
        if violations or owner is None:
            return violations
        return await self._check(action, params, owner)

    @staticmethod
    async def _check(action: Action, params: dict[str, Any], principal: Principal) -> list[FieldViolation]:
        if len(json.dumps(params)) > MAX_PARAMS_BYTES:
            return [FieldViolation(field="params", message=f"must be at most {MAX_PARAMS_BYTES} bytes as JSON")]
        if action.check is None:
            return []
        try:
            await action.check(principal, params)
        except ValidationFailed as error:
            return list(error.violations)
        return []


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Tasks belong to user accounts; sign in as a user")
    return principal.user_id


def _new_id(action: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", action.lower()).strip("-")[:40] or "task"
    return f"{stem}-{secrets.token_hex(4)}"


def _identity_violations(task_id: str, name: str, description: str) -> list[FieldViolation]:
    violations = []
    if task_id and not TASK_ID.match(task_id):
        message = "must be 1 to 64 lowercase letters, digits, '_', '-' or '.', starting with a letter or digit"
        violations.append(FieldViolation(field="id", message=message))
    if len(name.strip()) > MAX_NAME:
        violations.append(FieldViolation(field="name", message=f"must be at most {MAX_NAME} characters"))
    if len(description) > MAX_DESCRIPTION:
        violations.append(FieldViolation(field="description", message=f"must be at most {MAX_DESCRIPTION} characters"))
    return violations


def _trigger_columns(draft: TriggerDraft, now: datetime) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The task's trigger columns, or what is wrong with the draft."""
    kind = draft.kind or _guess_kind(draft)
    timezone = draft.timezone.strip() or "UTC"
    if kind not in KINDS:
        message = "is required: interval, cron or once (or give interval, schedule or run_at)"
        return {}, [FieldViolation(field="type", message=message if not kind else f"must be one of {', '.join(KINDS)}")]
    columns: dict[str, Any] = {
        "trigger": kind,
        "anchor_at": now,
        "interval_seconds": None,
        "cron": None,
        "run_at": None,
    }
    if kind == "interval":
        interval = draft.interval or Interval()
        violations = interval_violations(interval.days, interval.hours, interval.minutes, interval.seconds)
        violations += timezone_violations(timezone)
        columns.update(interval_seconds=interval.total, timezone=timezone)
        return columns, violations
    if kind == "cron":
        expression = " ".join(draft.cron.split())
        columns.update(cron=expression, timezone=timezone)
        return columns, cron_violations(expression, timezone, field="schedule")
    run_at = utc(draft.run_at) if draft.run_at else now
    if run_at < now - PAST_GRACE:
        return {}, [FieldViolation(field="run_at", message="is in the past")]
    columns.update(run_at=max(run_at, now), timezone=timezone)
    return columns, timezone_violations(timezone)


def _guess_kind(draft: TriggerDraft) -> str:
    if draft.interval is not None:
        return "interval"
    if draft.cron.strip():
        return "cron"
    if draft.run_at is not None:
        return "once"
    return ""
