"""The tasks domain as the server assembles it: actions, the engine, this replica's planner and
heartbeat, the service and its servicers.

    tasks = TasksDomain(settings, database, events, principals)
    tasks.registry.add(reindex_action(knowledge))            # actions first
    tasks.add_system_task("disk-usage", name=..., action="system.disk_usage", interval_seconds=30)
    await tasks.start()                                      # engine, heartbeat, planner
    ...
    await tasks.close()
"""

from __future__ import annotations

import logging
import secrets
import urllib.parse
from dataclasses import dataclass

from relais.v1 import task_pb2, task_pb2_grpc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from server.config import Settings
from server.events import EventBus
from server.registration import ServiceRegistration, register
from server.storage import Database
from server.storage.queries import add_system_setting, system_setting
from server.system.service import relais_version
from server.tasks.actions import ActionRegistry
from server.tasks.engine import Engine, EngineConfig
from server.tasks.executors import Executors
from server.tasks.health import SchedulerHealth, measure
from server.tasks.planner import Planner
from server.tasks.runner import PrincipalLookup, TaskRuntime
from server.tasks.service import TaskService
from server.tasks.servicer import JobServicer, TaskServicer

log = logging.getLogger("relais.tasks")

DEPLOYMENT_SETTING = "tasks.deployment"


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemTask:
    id: str
    name: str
    action: str
    interval_seconds: int
    every_replica: bool = False


def engine_config(settings: Settings) -> EngineConfig:
    """DBOS's database: RELAIS_TASKS_DATABASE_URL, else a SQLite file beside Relais' own (so the
    two never wait on each other's locks), else Relais' PostgreSQL database, in the schema
    RELAIS_TASKS_SCHEMA (default "dbos", or "<schema>_dbos" when the URL sets a search_path)."""
    url = settings.tasks_database_url or settings.database_url or f"sqlite:///{settings.data_dir / 'relais.db'}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not settings.tasks_database_url:
        database = parsed.database or ""
        beside = database.removesuffix(".db") + ".dbos.sqlite" if database and database != ":memory:" else ""
        url = f"sqlite:///{beside or settings.data_dir / 'relais.dbos.sqlite'}"
    elif parsed.get_backend_name() == "postgresql":
        url = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return EngineConfig(
        database_url=url, schema=settings.tasks_schema or _default_schema(url), application_version=relais_version()
    )


def _default_schema(url: str) -> str:
    options = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("options", [""])[0]
    for option in options.split():
        if option.startswith("-csearch_path="):
            first = option.removeprefix("-csearch_path=").split(",")[0].strip().strip('"')
            if first:
                return f"{first}_dbos"
    return "dbos"


class TasksDomain:
    def __init__(self, settings: Settings, database: Database, events: EventBus, principals: PrincipalLookup) -> None:
        self.settings = settings
        self.database = database
        self.events = events
        self.principals = principals
        self.registry = ActionRegistry()
        self.history_limit = settings.tasks_history_limit
        self._system_tasks: list[SystemTask] = []
        self.deployment = ""
        self.runtime: TaskRuntime | None = None
        self._engine: Engine | None = None
        self.planner: Planner | None = None
        self.executors: Executors | None = None
        self.service = TaskService(database, self.registry, self)

    def add_system_task(
        self, task_id: str, *, name: str, action: str, interval_seconds: float, every_replica: bool = False
    ) -> None:
        self._system_tasks.append(
            SystemTask(
                id=task_id,
                name=name,
                action=action,
                interval_seconds=max(1, round(interval_seconds)),
                every_replica=every_replica,
            )
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the task engine is not started")
        return self._engine

    def changed(self) -> None:
        if self.planner is not None:
            self.planner.poke()

    async def start(self) -> None:
        settings = self.settings
        self.deployment = await self._deployment()
        self.runtime = TaskRuntime(
            database=self.database,
            registry=self.registry,
            principals=self.principals,
            events=self.events,
            deployment=self.deployment,
            history_limit=self.history_limit,
            max_concurrent_runs=settings.tasks_max_concurrent_runs,
        )
        self._engine = await Engine.attach(engine_config(settings), self.deployment, self.runtime)
        self.runtime.engine = self._engine
        self.executors = Executors(
            database=self.database,
            engine=self._engine,
            heartbeat_seconds=settings.tasks_heartbeat_seconds,
            dead_after_seconds=settings.tasks_dead_after_seconds,
        )
        await self.executors.beat()
        self.executors.start()
        for task in self._system_tasks:
            await self.service.ensure_system_task(
                task.id,
                name=task.name,
                action=task.action,
                interval_seconds=task.interval_seconds,
                every_replica=task.every_replica,
            )
        self.planner = Planner(
            database=self.database,
            engine=self._engine,
            deployment=self.deployment,
            refresh_seconds=settings.tasks_refresh_seconds,
            late_after_seconds=settings.tasks_late_after_seconds,
        )
        self.planner.start()

    async def _deployment(self) -> str:
        """A random id shared by the replicas of one database: it prefixes their run ids."""
        try:
            async with self.database.sessions() as session, session.begin():
                found = await system_setting(session, DEPLOYMENT_SETTING)
                if found is None:
                    found = secrets.token_hex(6)
                    add_system_setting(session, DEPLOYMENT_SETTING, found)
            return found
        except IntegrityError:  # another replica starting at the same time wrote it first
            async with self.database.sessions() as session:
                stored = await system_setting(session, DEPLOYMENT_SETTING)
            assert stored is not None
            return stored

    def registrations(self) -> list[ServiceRegistration]:
        return [
            register(task_pb2, task_pb2_grpc, "JobService", JobServicer(self.service)),
            register(task_pb2, task_pb2_grpc, "TaskService", TaskServicer(self.service)),
        ]

    async def health(self) -> SchedulerHealth:
        assert self.planner is not None and self.executors is not None
        return await measure(
            database=self.database,
            engine=self.engine,
            planner=self.planner,
            executors=self.executors,
            deployment=self.deployment,
            late_after_seconds=self.settings.tasks_late_after_seconds,
        )

    async def close(self, grace: float = 0.0) -> None:
        """Stop planning; give the runs in progress here `grace` seconds, then stop the engine:
        runs still going stay unfinished, and a live replica (or the next start) resumes them."""
        if self.planner is not None:
            await self.planner.stop()
        if self.runtime is not None:
            await self.runtime.drain(grace)
        if self.executors is not None:
            await self.executors.stop()
        if self._engine is not None:
            # The process' other servers (tests run several) keep its executor alive.
            last = not self._engine.shared
            await self._engine.detach()
            if last and self.executors is not None:
                await self.executors.mark_stopped()
        if self.runtime is not None:
            await self.runtime.close()
