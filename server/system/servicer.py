"""SystemService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relais.v1 import system_pb2, system_pb2_grpc

from server.convert import timestamp
from server.scheduler.engine import TaskState
from server.system.service import Dependency, Status, SystemService

_STATUS = {
    Status.HEALTHY: system_pb2.HEALTH_STATUS_HEALTHY,
    Status.DEGRADED: system_pb2.HEALTH_STATUS_DEGRADED,
    Status.UNHEALTHY: system_pb2.HEALTH_STATUS_UNHEALTHY,
}
_DEPENDENCY = {
    Dependency.CONNECTED: system_pb2.DEPENDENCY_STATE_CONNECTED,
    Dependency.DISCONNECTED: system_pb2.DEPENDENCY_STATE_DISCONNECTED,
    Dependency.NOT_CONFIGURED: system_pb2.DEPENDENCY_STATE_NOT_CONFIGURED,
}


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, service: SystemService) -> None:
        self._service = service

    async def GetHealth(self, request: system_pb2.GetHealthRequest, context: Any) -> system_pb2.GetHealthResponse:
        report = await self._service.health()
        measured = timestamp(report.measured_at)
        return system_pb2.GetHealthResponse(
            status=_STATUS[report.status],
            version=report.version,
            time=measured,
            timestamp=measured,
            uptime=report.uptime_seconds,
            gpu=system_pb2.GpuInfo(available=report.gpu.available, count=len(report.gpu.names), names=report.gpu.names),
            plugins_count=report.plugins_count,
            tools_count=report.tools_count,
            db_ok=report.database_ok,
            faiss_ok=report.vector_store is Dependency.CONNECTED,
            ollama=_DEPENDENCY[report.inference],
            chromadb=_DEPENDENCY[report.vector_store],
            checks=system_pb2.HealthChecks(database=report.database_ok, redis=report.redis_ok, disk=report.disk_ok),
            disk=system_pb2.DiskUsage(
                path=report.disk.path, free_bytes=report.disk.free_bytes, total_bytes=report.disk.total_bytes
            ),
            latency=system_pb2.ProbeLatency(database_ms=report.database_ms, redis_ms=report.redis_ms),
            database_engine=report.database_engine,
        )

    async def GetManagerHealth(
        self, request: system_pb2.GetManagerHealthRequest, context: Any
    ) -> system_pb2.GetManagerHealthResponse:
        state = self._service.scheduler_state()
        return system_pb2.GetManagerHealthResponse(
            status=system_pb2.HEALTH_STATUS_HEALTHY if state.healthy else system_pb2.HEALTH_STATUS_DEGRADED,
            running=state.running,
            started_at=timestamp(state.started_at),
            uptime=state.uptime_seconds,
            tasks_count=len(state.tasks),
            running_count=state.running_count,
            failures=state.failures,
            tasks=[_task(task) for task in state.tasks],
            timestamp=timestamp(datetime.now().astimezone()),
        )


def _task(task: TaskState) -> system_pb2.ScheduledTaskState:
    return system_pb2.ScheduledTaskState(
        name=task.name,
        interval_seconds=task.interval,
        runs=task.runs,
        failures=task.failures,
        last_run=timestamp(task.last_run),
        next_run=timestamp(task.next_run),
        last_error=task.last_error,
    )
