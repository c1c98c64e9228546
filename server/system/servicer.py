"""SystemService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relais.v1 import system_pb2, system_pb2_grpc

from server.convert import timestamp
from server.interceptors.call import current_call
from server.system.service import Dependency, HealthReport, Status, SystemService
from server.tasks.health import SystemTaskState

_STATUS = {
    Status.HEALTHY: system_pb2.HEALTH_STATUS_HEALTHY,
    Status.DEGRADED: system_pb2.HEALTH_STATUS_DEGRADED,
    Status.UNHEALTHY: system_pb2.HEALTH_STATUS_UNHEALTHY,
    Status.DRAINING: system_pb2.HEALTH_STATUS_DRAINING,
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
        if report.status is Status.DRAINING:
            # Answered 503 over HTTP (see system.proto): a balancer retries elsewhere at once.
            current_call().response_metadata.append(("retry-after", "1"))
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
                # Where the data lives is for administrators: /health is public.
                path=report.disk.path if _is_admin() else "",
                free_bytes=report.disk.free_bytes,
                total_bytes=report.disk.total_bytes,
            ),
            latency=system_pb2.ProbeLatency(database_ms=report.database_ms, redis_ms=report.redis_ms),
            database_engine=report.database_engine,
            tool_sources={
                name: _DEPENDENCY[Dependency.CONNECTED if up else Dependency.DISCONNECTED]
                for name, up in report.tool_sources.items()
            },
            vector_store=_dependency(report, "vector_store", report.vector_store),
            inference=_dependency(report, "inference", report.inference),
            redis=_dependency(report, "redis", report.redis_state),
        )

    async def GetManagerHealth(
        self, request: system_pb2.GetManagerHealthRequest, context: Any
    ) -> system_pb2.GetManagerHealthResponse:
        now = timestamp(datetime.now(UTC))
        state = await self._service.scheduler_health()
        if state is None:
            return system_pb2.GetManagerHealthResponse(status=system_pb2.HEALTH_STATUS_UNHEALTHY, timestamp=now)
        return system_pb2.GetManagerHealthResponse(
            status=system_pb2.HEALTH_STATUS_HEALTHY if state.healthy else system_pb2.HEALTH_STATUS_DEGRADED,
            running=state.running,
            started_at=timestamp(state.started_at),
            uptime=state.uptime_seconds,
            tasks_count=state.tasks_count,
            running_count=state.running_count,
            failures=state.failures,
            tasks=[_task(item) for item in state.system_tasks],
            timestamp=now,
            engine=state.engine,
            engine_database=state.engine_database,
            executors_alive=state.executors_alive,
            executors=[
                system_pb2.SchedulerExecutor(
                    id=row.id,
                    host=row.host,
                    pid=row.pid,
                    started_at=timestamp(row.started_at),
                    seen_at=timestamp(row.seen_at),
                    alive=alive,
                )
                for row, alive in state.executors
            ],
            queue_depth=state.queue_depth,
            late_runs=state.late_runs,
            late_after_seconds=state.late_after_seconds,
            executor_id=state.executor_id,
            enabled_count=state.enabled_count,
        )


def _is_admin() -> bool:
    principal = current_call().principal
    return principal is not None and principal.is_admin


def _dependency(report: HealthReport, name: str, state: Dependency) -> system_pb2.DependencyHealth:
    backend, model = report.identities.get(name, ("redis" if name == "redis" else "", ""))
    return system_pb2.DependencyHealth(state=_DEPENDENCY[state], backend=backend, model=model)


def _task(item: SystemTaskState) -> system_pb2.ScheduledTaskState:
    state = item.state
    return system_pb2.ScheduledTaskState(
        name=item.id,
        interval_seconds=float(item.interval_seconds or 0),
        runs=state.success_count + state.failure_count,
        failures=state.failure_count,
        last_run=timestamp(state.last_run_at),
        next_run=timestamp(item.next_run),
        last_error=state.last_error if state.last_status == "failed" else "",
    )
