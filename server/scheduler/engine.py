"""In-process scheduler for periodic housekeeping tasks.

Each task runs in its own asyncio task on a fixed interval; a failing run is
counted and logged, never fatal. The state snapshot feeds GET /manager/health.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from server.observability import SCHEDULER_RUNS

log = logging.getLogger("relais.scheduler")

TaskFunction = Callable[[], Awaitable[None]]


@dataclass(slots=True, kw_only=True)
class TaskState:
    name: str
    interval: float
    runs: int = 0
    failures: int = 0
    running: bool = False
    last_run: datetime | None = None
    next_run: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSnapshot:
    running: bool
    started_at: datetime | None
    uptime_seconds: int
    tasks: tuple[TaskState, ...]

    @property
    def failures(self) -> int:
        return sum(task.failures for task in self.tasks)

    @property
    def running_count(self) -> int:
        return sum(task.running for task in self.tasks)

    @property
    def healthy(self) -> bool:
        return self.running and not any(task.last_error for task in self.tasks)


@dataclass(slots=True)
class _Entry:
    function: TaskFunction
    state: TaskState
    loop: asyncio.Task[None] | None = None


@dataclass(slots=True)
class Scheduler:
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _started_at: datetime | None = None
    _started_monotonic: float = 0.0

    def add(self, name: str, interval: float, function: TaskFunction) -> None:
        if name in self._entries:
            raise ValueError(f"task {name!r} is already scheduled")
        self._entries[name] = _Entry(function, TaskState(name=name, interval=interval))
        if self._started_at is not None:
            self._launch(self._entries[name])

    def start(self) -> None:
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()
        for entry in self._entries.values():
            self._launch(entry)

    async def stop(self) -> None:
        loops = [entry.loop for entry in self._entries.values() if entry.loop]
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        self._started_at = None

    def snapshot(self) -> SchedulerSnapshot:
        alive = self._started_at is not None and all(
            entry.loop is not None and not entry.loop.done() for entry in self._entries.values()
        )
        uptime = int(time.monotonic() - self._started_monotonic) if self._started_at else 0
        states = tuple(
            TaskState(**{f: getattr(e.state, f) for f in TaskState.__slots__}) for e in self._entries.values()
        )
        return SchedulerSnapshot(running=alive, started_at=self._started_at, uptime_seconds=uptime, tasks=states)

    def _launch(self, entry: _Entry) -> None:
        entry.loop = asyncio.get_running_loop().create_task(
            self._run_forever(entry), name=f"scheduler:{entry.state.name}"
        )

    async def _run_forever(self, entry: _Entry) -> None:
        state = entry.state
        while True:
            state.running = True
            try:
                await entry.function()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                state.failures += 1
                state.last_error = f"{type(error).__name__}: {error}"
                SCHEDULER_RUNS.labels(state.name, "failure").inc()
                log.exception("scheduled task %s failed", state.name)
            else:
                state.last_error = ""
                SCHEDULER_RUNS.labels(state.name, "success").inc()
            finally:
                state.running = False
            state.runs += 1
            state.last_run = datetime.now(UTC)
            state.next_run = state.last_run + timedelta(seconds=state.interval)
            await asyncio.sleep(state.interval)
