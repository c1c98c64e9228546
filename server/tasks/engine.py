"""DBOS Transact as the task engine: durable runs, each once, across replicas.

A run is a DBOS workflow whose id says which tick it is for (see `run_id`). Every replica's
planner starts each due tick; DBOS inserts the workflow row once and runs it only where the
insert happened, so a tick runs once however many replicas plan it. The run's work is
checkpointed in steps: a run interrupted by a crash resumes, on a live replica, after its
last finished step (server/tasks/executors.py finds the dead replicas). A cancelled run stops
when it reaches its next step.

DBOS is one instance per process (its global `DBOS` object), so a process has one engine,
shared by the servers it runs (tests start several; a deployment runs one per process). It
lives on a loop of its own thread: the engine's bookkeeping never runs on a server's loop,
and a run's steps execute on the loop of the server whose task it is (`Runtime.loop`).

    engine = Engine.attach(config, deployment, runtime)     # launches DBOS with the first server
    await engine.start(RunRequest(...))                      # no-op when that run already exists
    await engine.cancel([run_id]); await engine.runs(prefix)
    await engine.detach()                                    # DBOS stops with the last server
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy
from dbos import DBOS, SetWorkflowID
from dbos._error import DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError

from server.storage.faults import unreachable
from server.tasks.runs import RunRecord, RunRequest, list_runs, run_id, run_prefix

__all__ = [
    "Engine",
    "EngineConfig",
    "RunRecord",
    "RunRequest",
    "Runtime",
    "RuntimeGone",
    "Steps",
    "run_id",
    "run_prefix",
]

log = logging.getLogger("relais.tasks.engine")
T = TypeVar("T")

RUN_WORKFLOW = "relais.tasks.run"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """Where DBOS keeps its state: its own SQLite file, or a schema of the PostgreSQL database."""

    database_url: str
    schema: str
    application_version: str

    @property
    def dialect(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"


class Steps(Protocol):
    """What a run's orchestration may do: checkpointed steps, and plain calls, on its server's loop."""

    async def step(self, name: str, function: Callable[..., Awaitable[T]], *args: Any) -> T: ...

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T: ...


class Runtime(Protocol):
    """A server's side of the runs of its deployment (server/tasks/runner.py)."""

    loop: asyncio.AbstractEventLoop

    async def execute(self, request: RunRequest, run_id: str, steps: Steps) -> dict[str, Any]:
        """Orchestrate the run (on the engine's loop), doing all its work through `steps`."""
        ...


class RuntimeGone(Exception):
    """The server whose task a run is has stopped in this process."""


class _Host:
    """The process's DBOS instance, the thread and loop it runs on, and the runtimes it serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self.config: EngineConfig | None = None
        self.executor_id = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # By deployment: the servers of this process sharing a database are replicas of one.
        self.runtimes: dict[str, list[Runtime]] = {}
        # Steps executing on each runtime's loop: a server that stops ends its own before it
        # closes its database, rather than leave them to die with its loop mid-transaction.
        self.running_steps: dict[Runtime, set[asyncio.Task[Any]]] = {}

    def acquire(self, config: EngineConfig) -> None:
        """Launch DBOS for the first user (blocking: connects and migrates its database)."""
        with self._lock:
            if self._users == 0:
                self._launch(config)
            elif self.config != config:
                log.warning(
                    "this process' task engine already runs on %s; this server's tasks use it too",
                    self.config.dialect if self.config else "?",
                )
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._shutdown()

    def _launch(self, config: EngineConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="relais-task-engine", daemon=True)
        self._thread.start()
        self.executor_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        _quiet_dbos_logs()
        dbos_config: Any = {
            "name": "relais",
            "system_database_url": config.database_url,
            "system_database_engine": _sqlite_engine(config.database_url) if config.dialect == "sqlite" else None,
            "dbos_system_schema": config.schema,
            "executor_id": self.executor_id,
            "application_version": config.application_version,
            "log_level": "WARNING",
            "max_executor_threads": 64,
        }
        try:
            DBOS(config=dbos_config)
            # Launched on the engine's loop, DBOS takes it as its main loop: runs it resumes or
            # dequeues run there too, like the ones this module starts.
            self._submit(_launch_here()).result(120)
        except BaseException:
            DBOS.destroy()
            self._stop_loop()
            raise
        self.config = config
        log.info("task engine (DBOS) running on %s as executor %s", config.dialect, self.executor_id)

    def _shutdown(self) -> None:
        try:
            # Runs still in flight are cancelled as asyncio tasks: DBOS keeps them PENDING, and
            # a live replica (or this deployment's next start) resumes them.
            DBOS.destroy(workflow_completion_timeout_sec=0)
        finally:
            self._stop_loop()
            self.config = None

    def _stop_loop(self) -> None:
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self.loop, self._thread = None, None

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        assert self.loop is not None, "the task engine is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def on_engine(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine run on the engine's loop, from any loop."""
        return await asyncio.wrap_future(self._submit(coroutine))

    def runtime(self, deployment: str) -> Runtime:
        for found in self.runtimes.get(deployment, []):
            if not found.loop.is_closed():
                return found
        raise RuntimeGone(deployment)

    @property
    def users(self) -> int:
        return self._users


_HOST = _Host()


def _sqlite_engine(url: str) -> sqlalchemy.Engine:
    """DBOS's SQLite engine as DBOS makes it (IMMEDIATE transactions, a long busy timeout,
    foreign keys), in WAL mode, with one connection. Without WAL each commit waits for the
    journal's fsyncs (a run, five commits, took ~70 ms here instead of ~8); with several
    connections, concurrent runs' writers meet SQLite's lock, whose busy handler sleeps up to
    100 ms at a time, where one connection queues them in order (bench/tasks.py: at 100
    ticks/s, 4x the runs begun)."""
    engine = sqlalchemy.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)

    @sqlalchemy.event.listens_for(engine, "connect")
    def configure(connection: Any, _record: Any) -> None:
        connection.isolation_level = "IMMEDIATE"
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA journal_mode=WAL")

    return engine


async def _launch_here() -> None:
    DBOS.launch()


async def _cancel_all() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _quiet_dbos_logs() -> None:
    """DBOS logs through Relais' handlers (a handler of its own would bypass them), without the
    traceback it prints for every run that fails or is cancelled: the run's error is kept."""
    dbos_logger = logging.getLogger("dbos")
    if not dbos_logger.handlers:
        dbos_logger.addHandler(logging.NullHandler())
    dbos_logger.propagate = True
    if not any(isinstance(f, _RunOutcomeFilter) for f in dbos_logger.filters):
        dbos_logger.addFilter(_RunOutcomeFilter())


class _RunOutcomeFilter(logging.Filter):
    """Drops what DBOS logs that Relais reports its own way (a run's outcome, a database outage)."""

    NOISE = (
        "Exception encountered in asynchronous workflow",
        "is no longer owned by this execution",
        "Asyncio task cancelled for workflow",
    )

    # DBOS's background threads (its queues, schedules and lock) try the database every second and
    # log each failure with its traceback while it is away; Relais reports an outage once, and its
    # return (server/storage/faults.py).
    OUTAGE = (
        "connection failed",
        "Connection refused",
        "server closed the connection",
        "terminating connection",
        "the database system is",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(noise in message for noise in self.NOISE):
            return False
        if record.exc_info and record.exc_info[1] is not None and unreachable(record.exc_info[1]):
            return False
        return not ("OperationalError" in message and any(outage in message for outage in self.OUTAGE))


class _WorkflowSteps:
    """Steps of one run: checkpointed by DBOS on the engine's loop, executed on the server's."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def step(self, name: str, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        result: T = await DBOS.run_step_async({"name": name}, self.call, function, *args)
        return result

    async def call(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        loop = self._runtime.loop
        if loop.is_closed():
            raise RuntimeGone("the server running this task has stopped")

        async def there() -> T:
            return await function(*args)

        running = _HOST.running_steps.setdefault(self._runtime, set())
        return await asyncio.wrap_future(_run_on(loop, there(), running))


def _run_on(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T], running: set[asyncio.Task[Any]]
) -> Future[T]:
    """Run `coroutine` on another thread's `loop`, in a fresh context: the run's DBOS context
    (a contextvar) must not follow the work, or the server's own calls to the engine from that
    work would count as steps of the run. Its task is in `running` until it ends."""
    outcome: Future[T] = Future()

    def settle(task: asyncio.Task[T]) -> None:
        if task.cancelled():
            outcome.set_exception(asyncio.CancelledError())
        elif (error := task.exception()) is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(task.result())

    def start() -> None:
        if not outcome.set_running_or_notify_cancel():
            coroutine.close()
            return
        task = loop.create_task(coroutine, context=contextvars.Context())
        running.add(task)
        task.add_done_callback(running.discard)
        task.add_done_callback(settle)

    try:
        loop.call_soon_threadsafe(start)
    except RuntimeError as error:  # the loop closed meanwhile
        coroutine.close()
        raise RuntimeGone(str(error)) from error
    return outcome


@DBOS.workflow(name=RUN_WORKFLOW)
async def _run_workflow(request: RunRequest) -> dict[str, Any]:
    try:
        runtime = _HOST.runtime(request.deployment)
        return await runtime.execute(request, DBOS.workflow_id or "", _WorkflowSteps(runtime))
    except RuntimeGone:
        # Not ours to finish here: left PENDING, a replica serving this deployment resumes it.
        raise asyncio.CancelledError() from None


def why_stopped(error: BaseException) -> str:
    """What an engine stop raised in a run means: "cancelled" (the run reached a step after a
    cancel), "lost" (the run no longer belongs to this execution: it was cancelled while a step
    was under way, or taken over by another replica, which then finishes it), or ""."""
    if isinstance(error, DBOSWorkflowCancelledError):
        return "cancelled"
    if isinstance(error, DBOSWorkflowConflictIDError):
        return "lost"
    return ""


class Engine:
    """One server's handle on the process's engine, for its deployment's runs."""

    def __init__(self, config: EngineConfig, deployment: str) -> None:
        self.config = config
        self.deployment = deployment
        self._runtime: Runtime | None = None

    @classmethod
    async def attach(cls, config: EngineConfig, deployment: str, runtime: Runtime) -> Engine:
        await asyncio.to_thread(_HOST.acquire, config)
        _HOST.runtimes.setdefault(deployment, []).append(runtime)
        engine = cls(_HOST.config or config, deployment)
        engine._runtime = runtime
        return engine

    async def detach(self) -> None:
        runtimes = _HOST.runtimes.get(self.deployment, [])
        if self._runtime in runtimes:
            runtimes.remove(self._runtime)
        await asyncio.to_thread(_HOST.release)
        # Steps still executing here are cancelled: their runs stay unfinished and resume later.
        steps = _HOST.running_steps.pop(self._runtime, set()) if self._runtime is not None else set()
        for step in list(steps):
            step.cancel()
        await asyncio.gather(*list(steps), return_exceptions=True)

    @property
    def shared(self) -> bool:
        """Other servers of this process use the engine too (tests run several)."""
        return _HOST.users > 1

    @property
    def executor_id(self) -> str:
        return _HOST.executor_id

    @property
    def running(self) -> bool:
        return _HOST.loop is not None and _HOST.loop.is_running()

    async def start(self, request: RunRequest, *, run: str | None = None) -> str:
        """Start the run (`run` overrides its id); nothing happens when that id exists already."""
        identifier = run or request.run_id
        await _HOST.on_engine(_start(identifier, request))
        return identifier

    async def cancel(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            await _HOST.on_engine(DBOS.cancel_workflows_async(list(run_ids)))

    async def delete(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            await _HOST.on_engine(DBOS.delete_workflows_async(list(run_ids)))

    async def runs(
        self,
        prefix: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
        active_only: bool = False,
        with_steps: bool = False,
        with_data: bool = True,
    ) -> list[RunRecord]:
        """The runs whose id starts with `prefix`, newest first."""
        return await _HOST.on_engine(list_runs(prefix, limit, offset, active_only, with_steps, with_data))

    async def recover(self, executor_ids: Sequence[str]) -> int:
        """Resume elsewhere the unfinished runs of replicas that died. Returns how many."""
        if not executor_ids:
            return 0
        handles = await _HOST.on_engine(asyncio.to_thread(DBOS._recover_pending_workflows, list(executor_ids)))
        return len(handles)


async def _start(identifier: str, request: RunRequest) -> None:
    with SetWorkflowID(identifier):
        await DBOS.start_workflow_async(_run_workflow, request)
