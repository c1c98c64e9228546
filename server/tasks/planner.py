"""Each replica's planner: it starts every due tick of every enabled task.

All replicas plan all ticks; a tick's run id is deterministic (server/tasks/engine.py), so the
engine runs it once, wherever its row was inserted first. Task definitions are read again
when they change: at once on this replica (`poke`), within `refresh_seconds` on the others.

Misfire policy: when a planner (re)reads a task, the latest tick at or before now that no run
began for is started, once, whatever the number of ticks missed (every replica down, a loop
blocked for a while). A task's ticks are counted from its anchor (creation, last trigger
change or resume): ticks missed while it was paused are not "missed".
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from server.storage import Database
from server.storage.models import utcnow
from server.tasks import repository
from server.tasks.engine import Engine, RunRequest, run_id
from server.tasks.models import Task
from server.tasks.triggers import Trigger, utc

log = logging.getLogger("relais.tasks.planner")

# A planner that failed to start a tick tries again this much later.
RETRY_SECONDS = 1.0


def trigger_of(task: Task) -> Trigger:
    anchor = utc(task.anchor_at)
    if task.trigger == "interval":
        assert task.interval_seconds
        return Trigger.interval(task.interval_seconds, anchor=anchor)
    if task.trigger == "cron":
        assert task.cron
        return Trigger.crontab(task.cron, task.timezone, anchor=anchor)
    return Trigger.once(task.run_at, anchor=anchor)


def _signature(task: Task) -> tuple[object, ...]:
    return (
        task.incarnation,
        task.trigger,
        task.interval_seconds,
        task.cron,
        task.timezone,
        task.run_at,
        task.anchor_at,
        task.every_replica,
    )


@dataclass(slots=True, kw_only=True)
class _Plan:
    task_id: str
    incarnation: str
    trigger: Trigger
    every_replica: bool
    signature: tuple[object, ...]
    # The latest tick handled (started, or found already begun).
    cursor: datetime
    next_at: datetime | None = None
    # Bumped when the plan is replaced, so stale heap entries are told apart.
    generation: int = 0


@dataclass(order=True, slots=True)
class _Due:
    at: datetime
    task_id: str = field(compare=False)
    generation: int = field(compare=False)


class Planner:
    def __init__(
        self,
        *,
        database: Database,
        engine: Engine,
        deployment: str,
        refresh_seconds: float,
        late_after_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._engine = engine
        self._deployment = deployment
        self._refresh_seconds = refresh_seconds
        self._late_after = timedelta(seconds=late_after_seconds)
        self._clock = clock
        self._plans: dict[str, _Plan] = {}
        self._heap: list[_Due] = []
        self._fingerprint: tuple[int, datetime | None] | None = None
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self._generation = 0
        self.started_at: datetime | None = None
        self._started_monotonic = 0.0
        self.ticks_started = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.started_at = self._clock()
        self._started_monotonic = time.monotonic()
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="tasks-planner")

    async def stop(self) -> None:
        tasks = [task for task in (self._loop_task, *self._starting) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None

    @property
    def alive(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self._started_monotonic) if self.started_at else 0

    def poke(self) -> None:
        """A task changed on this replica: read the definitions again now."""
        self._fingerprint = None
        self._wake.set()

    def next_run(self, task_id: str) -> datetime | None:
        plan = self._plans.get(task_id)
        return plan.next_at if plan else None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        next_refresh = 0.0
        while True:
            try:
                if time.monotonic() >= next_refresh or self._fingerprint is None:
                    await self._refresh()
                    next_refresh = time.monotonic() + self._refresh_seconds
                self._start_due(self._clock())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The database away is an outage the storage layer reports once (and its return).
                if self._database.translate(error) is None:
                    log.exception("the task planner failed; trying again")
                next_refresh = time.monotonic() + RETRY_SECONDS
            await self._sleep(next_refresh)

    async def _sleep(self, next_refresh: float) -> None:
        timeout = max(0.0, next_refresh - time.monotonic())
        if self._heap:
            timeout = min(timeout, max(0.0, (self._heap[0].at - self._clock()).total_seconds()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _refresh(self) -> None:
        async with self._database.sessions() as session:
            fingerprint = await repository.fingerprint(session)
            if fingerprint == self._fingerprint:
                return
            tasks = await repository.enabled(session)
        self._fingerprint = fingerprint
        now = self._clock()
        current = {task.id: task for task in tasks}
        for gone in set(self._plans) - set(current):
            del self._plans[gone]
        for task in current.values():
            plan = self._plans.get(task.id)
            if plan is None or plan.signature != _signature(task):
                self._replan(task, now)

    def _replan(self, task: Task, now: datetime) -> None:
        """A task read for the first time, or changed: plan it, and catch up its latest missed tick."""
        self._generation += 1
        trigger = trigger_of(task)
        if task.every_replica:
            # This replica's own ticks, from its start: the first one at once.
            assert task.interval_seconds
            period = timedelta(seconds=task.interval_seconds)
            trigger = Trigger.interval(task.interval_seconds, anchor=(self.started_at or now) - period)
            cursor = (self.started_at or now) - period
        else:
            last = task.read_state().last_planned_at
            cursor = max(utc(last), trigger.anchor) if last else trigger.anchor
            if task.trigger == "once" and last is None:
                cursor = trigger.planned_once - timedelta(microseconds=1)
        plan = _Plan(
            task_id=task.id,
            incarnation=task.incarnation,
            trigger=trigger,
            every_replica=task.every_replica,
            signature=_signature(task),
            cursor=cursor,
            generation=self._generation,
        )
        self._plans[task.id] = plan
        self._schedule(plan, now)

    def _schedule(self, plan: _Plan, now: datetime) -> None:
        due = plan.trigger.last_at_or_before(now)
        plan.next_at = due if due is not None and due > plan.cursor else plan.trigger.next_after(max(plan.cursor, now))
        if plan.next_at is not None:
            heapq.heappush(self._heap, _Due(plan.next_at, plan.task_id, plan.generation))

    def _start_due(self, now: datetime) -> None:
        while self._heap and self._heap[0].at <= now:
            entry = heapq.heappop(self._heap)
            plan = self._plans.get(entry.task_id)
            if plan is None or plan.generation != entry.generation or plan.next_at != entry.at:
                continue
            # Late by several ticks: the latest one only (run once, not once per missed tick).
            planned = plan.trigger.last_at_or_before(now)
            if planned is not None and planned > plan.cursor:
                # Ticks were skipped (or this one is late): this run stands for the missed ones.
                skipped = planned > (plan.trigger.next_after(plan.cursor) or planned)
                trigger = "catch_up" if skipped or now - planned > self._late_after else "schedule"
                plan.cursor = planned
                self._launch(plan, planned, trigger)
            plan.next_at = plan.trigger.next_after(max(plan.cursor, now))
            if plan.next_at is not None:
                heapq.heappush(self._heap, _Due(plan.next_at, plan.task_id, plan.generation))

    def _launch(self, plan: _Plan, planned: datetime, trigger: str) -> None:
        request = RunRequest(
            deployment=self._deployment,
            task_id=plan.task_id,
            incarnation=plan.incarnation,
            trigger=trigger,
            planned_at=planned,
        )
        identifier = run_id(request, executor=self._engine.executor_id if plan.every_replica else None)
        task = asyncio.get_running_loop().create_task(self._start(plan, request, identifier))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start(self, plan: _Plan, request: RunRequest, identifier: str) -> None:
        try:
            await self._engine.start(request, run=identifier)
            self.ticks_started += 1
        except Exception:
            log.warning("could not start %s; trying again", identifier, exc_info=True)
            # Not begun: the next attempt starts the latest tick due by then.
            if self._plans.get(plan.task_id) is plan and plan.cursor >= request.planned_at:
                plan.cursor = request.planned_at - timedelta(microseconds=1)
                retry = self._clock() + timedelta(seconds=RETRY_SECONDS)
                plan.next_at = retry
                heapq.heappush(self._heap, _Due(retry, plan.task_id, plan.generation))
                self._wake.set()
