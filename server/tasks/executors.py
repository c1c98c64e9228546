"""The replicas running the scheduler: each beats in the database, and a replica that stops
beating is declared dead by the others, which resume its unfinished runs.

Every `heartbeat_seconds` each replica writes its `seen_at`, then looks for replicas silent for
more than `dead_after_seconds`: their runs still in progress go back to the engine's queue
(DBOS recovery; the queue's atomic claim lets one replica take each), and their rows go. A
replica that stops cleanly marks itself dead at once, so its runs resume without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta

from server.storage import Database
from server.storage.models import utcnow
from server.tasks import repository
from server.tasks.engine import Engine
from server.tasks.models import TaskExecutor
from server.tasks.triggers import utc
from server.tasks.views import ExecutorView

log = logging.getLogger("relais.tasks.executors")

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


class Executors:
    def __init__(
        self, *, database: Database, engine: Engine, heartbeat_seconds: float, dead_after_seconds: float
    ) -> None:
        self._database = database
        self._engine = engine
        self._heartbeat = heartbeat_seconds
        self.dead_after = timedelta(seconds=dead_after_seconds)
        self._task: asyncio.Task[None] | None = None
        self.last_beat: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tasks-heartbeat")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop beating (the engine may still run: see mark_stopped)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def mark_stopped(self) -> None:
        """Tell the other replicas at once that this one has stopped: its runs left unfinished
        resume on them without waiting for dead_after."""
        try:
            async with self._database.sessions() as session, session.begin():
                row = await session.get(TaskExecutor, self._engine.executor_id)
                if row is not None:
                    row.seen_at = LONG_AGO
        except Exception:
            log.warning("could not mark this replica's scheduler as stopped", exc_info=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
                await self.recover_dead()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The database away is an outage the storage layer reports once (and its return).
                if self._database.translate(error) is None:
                    log.warning("scheduler heartbeat failed", exc_info=True)
            await asyncio.sleep(self._heartbeat)

    async def beat(self) -> None:
        now = utcnow()
        me = TaskExecutor(id=self._engine.executor_id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=now)
        me.seen_at = now
        async with self._database.sessions() as session, session.begin():
            await repository.heartbeat(session, me, now)
        self.last_beat = now

    async def recover_dead(self) -> list[str]:
        """Resume the runs of replicas silent for too long; returns their ids."""
        now = utcnow()
        async with self._database.sessions() as session:
            rows = await repository.executors(session)
        dead = [
            row.id for row in rows if row.id != self._engine.executor_id and now - utc(row.seen_at) > self.dead_after
        ]
        if not dead:
            await self._clear_cancels()
            return []
        resumed = await self._engine.recover(dead)
        async with self._database.sessions() as session, session.begin():
            # Their runs record themselves again where they resume.
            stale = [run.run_id for run in await repository.running(session) if run.executor_id in dead]
            await repository.forget_runs(session, stale)
            await repository.forget_executors(session, dead)
        log.warning("scheduler replicas %s stopped beating; %d of their runs resume elsewhere", dead, resumed)
        await self._clear_cancels()
        return dead

    async def _clear_cancels(self) -> None:
        async with self._database.sessions() as session, session.begin():
            await repository.clear_stale_cancels(session)

    async def states(self) -> list[tuple[ExecutorView, bool]]:
        """Every replica known, and whether it beat recently."""
        now = utcnow()
        async with self._database.sessions() as session:
            rows = await repository.executors(session)
            return [(ExecutorView.of(row), now - utc(row.seen_at) <= self.dead_after) for row in rows]
