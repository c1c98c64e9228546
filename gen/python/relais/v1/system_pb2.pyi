import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DRAINING: _ClassVar[HealthStatus]

class DependencyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPENDENCY_STATE_UNSPECIFIED: _ClassVar[DependencyState]
    DEPENDENCY_STATE_CONNECTED: _ClassVar[DependencyState]
    DEPENDENCY_STATE_DISCONNECTED: _ClassVar[DependencyState]
    DEPENDENCY_STATE_NOT_CONFIGURED: _ClassVar[DependencyState]
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus
HEALTH_STATUS_DRAINING: HealthStatus
DEPENDENCY_STATE_UNSPECIFIED: DependencyState
DEPENDENCY_STATE_CONNECTED: DependencyState
DEPENDENCY_STATE_DISCONNECTED: DependencyState
DEPENDENCY_STATE_NOT_CONFIGURED: DependencyState

class GetHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GpuInfo(_message.Message):
    __slots__ = ("available", "count", "names")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    available: bool
    count: int
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, available: _Optional[bool] = ..., count: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class HealthChecks(_message.Message):
    __slots__ = ("database", "redis", "disk")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    REDIS_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    database: bool
    redis: bool
    disk: bool
    def __init__(self, database: _Optional[bool] = ..., redis: _Optional[bool] = ..., disk: _Optional[bool] = ...) -> None: ...

class DiskUsage(_message.Message):
    __slots__ = ("path", "free_bytes", "total_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    free_bytes: int
    total_bytes: int
    def __init__(self, path: _Optional[str] = ..., free_bytes: _Optional[int] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class ProbeLatency(_message.Message):
    __slots__ = ("database_ms", "redis_ms")
    DATABASE_MS_FIELD_NUMBER: _ClassVar[int]
    REDIS_MS_FIELD_NUMBER: _ClassVar[int]
    database_ms: float
    redis_ms: float
    def __init__(self, database_ms: _Optional[float] = ..., redis_ms: _Optional[float] = ...) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ("status", "version", "time", "timestamp", "uptime", "gpu", "plugins_count", "tools_count", "db_ok", "faiss_ok", "ollama", "chromadb", "checks", "disk", "latency", "database_engine", "tool_sources", "vector_store", "inference", "redis")
    class ToolSourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DependencyState
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DependencyState, str]] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_COUNT_FIELD_NUMBER: _ClassVar[int]
    DB_OK_FIELD_NUMBER: _ClassVar[int]
    FAISS_OK_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_FIELD_NUMBER: _ClassVar[int]
    CHROMADB_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    DATABASE_ENGINE_FIELD_NUMBER: _ClassVar[int]
    TOOL_SOURCES_FIELD_NUMBER: _ClassVar[int]
    VECTOR_STORE_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    REDIS_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus
    version: str
    time: _timestamp_pb2.Timestamp
    timestamp: _timestamp_pb2.Timestamp
    uptime: int
    gpu: GpuInfo
    plugins_count: int
    tools_count: int
    db_ok: bool
    faiss_ok: bool
    ollama: DependencyState
    chromadb: DependencyState
    checks: HealthChecks
    disk: DiskUsage
    latency: ProbeLatency
    database_engine: str
    tool_sources: _containers.ScalarMap[str, DependencyState]
    vector_store: DependencyHealth
    inference: DependencyHealth
    redis: DependencyHealth
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., version: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime: _Optional[int] = ..., gpu: _Optional[_Union[GpuInfo, _Mapping]] = ..., plugins_count: _Optional[int] = ..., tools_count: _Optional[int] = ..., db_ok: _Optional[bool] = ..., faiss_ok: _Optional[bool] = ..., ollama: _Optional[_Union[DependencyState, str]] = ..., chromadb: _Optional[_Union[DependencyState, str]] = ..., checks: _Optional[_Union[HealthChecks, _Mapping]] = ..., disk: _Optional[_Union[DiskUsage, _Mapping]] = ..., latency: _Optional[_Union[ProbeLatency, _Mapping]] = ..., database_engine: _Optional[str] = ..., tool_sources: _Optional[_Mapping[str, DependencyState]] = ..., vector_store: _Optional[_Union[DependencyHealth, _Mapping]] = ..., inference: _Optional[_Union[DependencyHealth, _Mapping]] = ..., redis: _Optional[_Union[DependencyHealth, _Mapping]] = ...) -> None: ...

class DependencyHealth(_message.Message):
    __slots__ = ("state", "backend", "model")
    STATE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    state: DependencyState
    backend: str
    model: str
    def __init__(self, state: _Optional[_Union[DependencyState, str]] = ..., backend: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class GetManagerHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ScheduledTaskState(_message.Message):
    __slots__ = ("name", "interval_seconds", "runs", "failures", "last_run", "next_run", "last_error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    interval_seconds: float
    runs: int
    failures: int
    last_run: _timestamp_pb2.Timestamp
    next_run: _timestamp_pb2.Timestamp
    last_error: str
    def __init__(self, name: _Optional[str] = ..., interval_seconds: _Optional[float] = ..., runs: _Optional[int] = ..., failures: _Optional[int] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ...) -> None: ...

class SchedulerExecutor(_message.Message):
    __slots__ = ("id", "host", "pid", "started_at", "seen_at", "alive")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    id: str
    host: str
    pid: int
    started_at: _timestamp_pb2.Timestamp
    seen_at: _timestamp_pb2.Timestamp
    alive: bool
    def __init__(self, id: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., alive: _Optional[bool] = ...) -> None: ...

class GetManagerHealthResponse(_message.Message):
    __slots__ = ("status", "running", "started_at", "uptime", "tasks_count", "running_count", "failures", "tasks", "timestamp", "engine", "engine_database", "executors_alive", "executors", "queue_depth", "late_runs", "late_after_seconds", "executor_id", "enabled_count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    TASKS_COUNT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_DATABASE_FIELD_NUMBER: _ClassVar[int]
    EXECUTORS_ALIVE_FIELD_NUMBER: _ClassVar[int]
    EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    LATE_RUNS_FIELD_NUMBER: _ClassVar[int]
    LATE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus
    running: bool
    started_at: _timestamp_pb2.Timestamp
    uptime: int
    tasks_count: int
    running_count: int
    failures: int
    tasks: _containers.RepeatedCompositeFieldContainer[ScheduledTaskState]
    timestamp: _timestamp_pb2.Timestamp
    engine: str
    engine_database: str
    executors_alive: int
    executors: _containers.RepeatedCompositeFieldContainer[SchedulerExecutor]
    queue_depth: int
    late_runs: int
    late_after_seconds: float
    executor_id: str
    enabled_count: int
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., running: _Optional[bool] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime: _Optional[int] = ..., tasks_count: _Optional[int] = ..., running_count: _Optional[int] = ..., failures: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[ScheduledTaskState, _Mapping]]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., engine: _Optional[str] = ..., engine_database: _Optional[str] = ..., executors_alive: _Optional[int] = ..., executors: _Optional[_Iterable[_Union[SchedulerExecutor, _Mapping]]] = ..., queue_depth: _Optional[int] = ..., late_runs: _Optional[int] = ..., late_after_seconds: _Optional[float] = ..., executor_id: _Optional[str] = ..., enabled_count: _Optional[int] = ...) -> None: ...
