"""The system domain as the server assembles it: health and its probes, the servicer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relais.v1 import system_pb2, system_pb2_grpc

from server.config import Settings
from server.observability import DATA_DIR_FREE_BYTES
from server.registration import ServiceRegistration, register
from server.storage import Database
from server.system.probes import RedisProbe, disk_usage
from server.system.service import SystemService
from server.system.servicer import SystemServicer


@dataclass(frozen=True, slots=True)
class SystemDomain:
    service: SystemService
    data_dir: Path
    redis: RedisProbe | None = None

    def registrations(self) -> list[ServiceRegistration]:
        return [register(system_pb2, system_pb2_grpc, "SystemService", SystemServicer(self.service))]

    async def sample_disk(self) -> dict[str, int]:
        """The data directory's free space, as a metric (the disk-usage task samples it)."""
        free = disk_usage(self.data_dir).free_bytes
        DATA_DIR_FREE_BYTES.set(free)
        return {"free_bytes": free}

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()


def start_system(settings: Settings, database: Database, *, draining: Callable[[], bool]) -> SystemDomain:
    """Health over the database, the data directory and Redis; the other domains register their
    probes and counters in `service.registries` as they start."""
    redis = RedisProbe(settings.redis_url) if settings.redis_url else None
    service = SystemService(
        database=database,
        data_dir=settings.data_dir,
        min_free_disk_bytes=settings.min_free_disk_bytes,
        redis=redis,
        draining=draining,
    )
    return SystemDomain(service, settings.data_dir, redis)
