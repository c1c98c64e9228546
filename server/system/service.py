"""Health of the service: every value measured when asked."""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from server.storage import Database
from server.system.probes import PROBE_TIMEOUT, DiskUsage, GpuProbe, GpuReport, RedisProbe, disk_usage

if TYPE_CHECKING:
    from server.tasks.health import SchedulerHealth

log = logging.getLogger("relais.system")

Counter = Callable[[], Awaitable[int]]
Probe = Callable[[], Awaitable[bool]]


class SchedulerProbe(Protocol):
    """The tasks domain's scheduler (server/tasks/), measured when asked."""

    async def health(self) -> SchedulerHealth: ...


class Status(enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    # Shutting down: refusing new calls, ending the running ones within the grace.
    DRAINING = "draining"


class Dependency(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    NOT_CONFIGURED = "not_configured"


@functools.cache
def relais_version() -> str:
    try:
        return metadata.version("relais")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthReport:
    status: Status
    version: str
    measured_at: datetime
    uptime_seconds: int
    gpu: GpuReport
    plugins_count: int
    tools_count: int
    database_ok: bool
    database_ms: float
    database_engine: str
    redis_ms: float | None
    redis_configured: bool
    disk: DiskUsage
    disk_ok: bool
    inference: Dependency
    vector_store: Dependency
    # Each MCP server tools come from, by name: connected or not.
    tool_sources: Mapping[str, bool] = field(default_factory=dict)
    # What each dependency is: name → (backend, model), e.g. "inference" → ("llama.cpp", "gemma3-270m").
    identities: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def redis_ok(self) -> bool:
        """Redis is not in the way: it answered, or none is configured."""
        return self.redis_ms is not None if self.redis_configured else True

    @property
    def redis_state(self) -> Dependency:
        if not self.redis_configured:
            return Dependency.NOT_CONFIGURED
        return Dependency.CONNECTED if self.redis_ms is not None else Dependency.DISCONNECTED


@dataclass(slots=True, kw_only=True)
class Registries:
    """What other domains contribute to the health report; absent ones count as zero
    or "not configured"."""

    counters: dict[str, Counter] = field(default_factory=dict)
    dependencies: dict[str, Probe] = field(default_factory=dict)
    # The state of each MCP server tools come from (kept up to date by their supervisors).
    tool_sources: Callable[[], Mapping[str, bool]] = dict
    # What each dependency really is: name → (backend, model).
    identities: dict[str, tuple[str, str]] = field(default_factory=dict)


class SystemService:
    def __init__(
        self,
        *,
        database: Database,
        data_dir: Path,
        min_free_disk_bytes: int,
        redis: RedisProbe | None = None,
        gpu: GpuProbe | None = None,
        registries: Registries | None = None,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._database = database
        self._draining = draining
        self._data_dir = data_dir
        self._min_free = min_free_disk_bytes
        # Plugged in once the tasks domain has started.
        self.scheduler: SchedulerProbe | None = None
        self._redis = redis
        self._gpu = gpu or GpuProbe()
        self.registries = registries or Registries()
        self._started = time.monotonic()
        # Dependency probes under way, by name (see _dependency).
        self._probing: dict[str, asyncio.Future[Dependency]] = {}

    async def health(self) -> HealthReport:
        # The probes that wait on something else run together; the in-memory readings (GPU list,
        # counters) are awaited in turn: a task each would cost more than they do.
        probes = {name: self._dependency(name) for name in ("inference", "vector_store")}
        redis = asyncio.ensure_future(self._redis.ping()) if self._redis else None
        database_ms, database_ok = await self._ping_database()
        redis_ms = await redis if redis is not None else None
        states = {name: await probe for name, probe in probes.items()}
        gpu = await self._gpu.measure()
        counts = {name: await self._count(name) for name in ("plugins", "tools")}
        disk = disk_usage(self._data_dir)
        disk_ok = disk.free_bytes >= self._min_free
        redis_ok = redis_ms is not None if self._redis else True
        tool_sources = self.registries.tool_sources()
        if self._draining():
            status = Status.DRAINING
        elif not database_ok:
            status = Status.UNHEALTHY
        elif not (disk_ok and redis_ok and all(tool_sources.values())) or Dependency.DISCONNECTED in states.values():
            status = Status.DEGRADED
        else:
            status = Status.HEALTHY
        return HealthReport(
            status=status,
            version=relais_version(),
            measured_at=datetime.now(UTC),
            uptime_seconds=int(time.monotonic() - self._started),
            gpu=gpu,
            plugins_count=counts["plugins"],
            tools_count=counts["tools"],
            database_ok=database_ok,
            database_ms=database_ms,
            database_engine=self._database.dialect,
            redis_ms=redis_ms,
            redis_configured=self._redis is not None,
            disk=disk,
            disk_ok=disk_ok,
            inference=states["inference"],
            vector_store=states["vector_store"],
            tool_sources=tool_sources,
            identities=dict(self.registries.identities),
        )

    async def scheduler_health(self) -> SchedulerHealth | None:
        """The scheduler's state; None before it has started."""
        return await self.scheduler.health() if self.scheduler is not None else None

    async def _ping_database(self) -> tuple[float, bool]:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                return await self._database.ping(), True
        except Exception as error:
            if self._database.translate(error) is None:  # an outage is logged once, by the database's tracker
                log.warning("database probe failed", exc_info=True)
            return 0.0, False

    async def _count(self, name: str) -> int:
        counter = self.registries.counters.get(name)
        return await counter() if counter is not None else 0

    def _dependency(self, name: str) -> Awaitable[Dependency]:
        """The state of `name` from a probe started now, or from the one already under way.

        Health checks that arrive together share one probe, so a burst of them (GET /health is
        public and unmetered) never multiplies the calls to Milvus or Triton; nothing is cached
        beyond that, so a check that starts after a probe ended sends a probe of its own."""
        running = self._probing.get(name)
        if running is None:
            running = asyncio.ensure_future(_dependency_state(self.registries.dependencies.get(name)))
            self._probing[name] = running
            running.add_done_callback(functools.partial(self._probe_done, name))
        # A caller that gives up does not cancel the probe the others wait for.
        return asyncio.shield(running)

    def _probe_done(self, name: str, probe: asyncio.Future[Dependency]) -> None:
        if self._probing.get(name) is probe:
            del self._probing[name]


async def _dependency_state(probe: Probe | None) -> Dependency:
    if probe is None:
        return Dependency.NOT_CONFIGURED
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            ok = await probe()
    except Exception:
        ok = False
    return Dependency.CONNECTED if ok else Dependency.DISCONNECTED
