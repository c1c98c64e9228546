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

class PluginState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLUGIN_STATE_UNSPECIFIED: _ClassVar[PluginState]
    PLUGIN_STATE_INSTALLED: _ClassVar[PluginState]
    PLUGIN_STATE_DISABLED: _ClassVar[PluginState]
    PLUGIN_STATE_STARTING: _ClassVar[PluginState]
    PLUGIN_STATE_RUNNING: _ClassVar[PluginState]
    PLUGIN_STATE_STOPPED: _ClassVar[PluginState]
    PLUGIN_STATE_FAILED: _ClassVar[PluginState]
PLUGIN_STATE_UNSPECIFIED: PluginState
PLUGIN_STATE_INSTALLED: PluginState
PLUGIN_STATE_DISABLED: PluginState
PLUGIN_STATE_STARTING: PluginState
PLUGIN_STATE_RUNNING: PluginState
PLUGIN_STATE_STOPPED: PluginState
PLUGIN_STATE_FAILED: PluginState

class PluginRoute(_message.Message):
    __slots__ = ("method", "path", "rpc")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    rpc: str
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., rpc: _Optional[str] = ...) -> None: ...

class PluginAction(_message.Message):
    __slots__ = ("name", "description", "params_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params_schema: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params_schema: _Optional[str] = ...) -> None: ...

class Plugin(_message.Message):
    __slots__ = ("id", "name", "version", "author", "description", "active", "enabled", "state", "api_prefix", "tags", "routes", "dependencies", "loaded_at", "last_reload", "permissions", "tools", "actions", "source", "signed_by", "sha256", "installed_at", "error", "restarts", "endpoints")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    API_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_BY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    INSTALLED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: str
    author: str
    description: str
    active: bool
    enabled: bool
    state: PluginState
    api_prefix: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    routes: _containers.RepeatedScalarFieldContainer[str]
    dependencies: _containers.RepeatedScalarFieldContainer[str]
    loaded_at: _timestamp_pb2.Timestamp
    last_reload: _timestamp_pb2.Timestamp
    permissions: _containers.RepeatedScalarFieldContainer[str]
    tools: _containers.RepeatedScalarFieldContainer[str]
    actions: _containers.RepeatedCompositeFieldContainer[PluginAction]
    source: str
    signed_by: str
    sha256: str
    installed_at: _timestamp_pb2.Timestamp
    error: str
    restarts: int
    endpoints: _containers.RepeatedCompositeFieldContainer[PluginRoute]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., author: _Optional[str] = ..., description: _Optional[str] = ..., active: _Optional[bool] = ..., enabled: _Optional[bool] = ..., state: _Optional[_Union[PluginState, str]] = ..., api_prefix: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., routes: _Optional[_Iterable[str]] = ..., dependencies: _Optional[_Iterable[str]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reload: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., permissions: _Optional[_Iterable[str]] = ..., tools: _Optional[_Iterable[str]] = ..., actions: _Optional[_Iterable[_Union[PluginAction, _Mapping]]] = ..., source: _Optional[str] = ..., signed_by: _Optional[str] = ..., sha256: _Optional[str] = ..., installed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., restarts: _Optional[int] = ..., endpoints: _Optional[_Iterable[_Union[PluginRoute, _Mapping]]] = ...) -> None: ...

class PluginEntry(_message.Message):
    __slots__ = ("name", "state", "meta")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: PluginState
    meta: Plugin
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[PluginState, str]] = ..., meta: _Optional[_Union[Plugin, _Mapping]] = ...) -> None: ...

class ListPluginsRequest(_message.Message):
    __slots__ = ("active_only", "skip", "offset", "limit")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    skip: int
    offset: int
    limit: int
    def __init__(self, active_only: _Optional[bool] = ..., skip: _Optional[int] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListPluginsResponse(_message.Message):
    __slots__ = ("total", "items", "plugins", "has_more")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    total: int
    items: _containers.RepeatedCompositeFieldContainer[Plugin]
    plugins: _containers.RepeatedCompositeFieldContainer[PluginEntry]
    has_more: bool
    def __init__(self, total: _Optional[int] = ..., items: _Optional[_Iterable[_Union[Plugin, _Mapping]]] = ..., plugins: _Optional[_Iterable[_Union[PluginEntry, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class GetPluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class InstallPluginRequest(_message.Message):
    __slots__ = ("name", "source", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    version: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class UploadPluginRequest(_message.Message):
    __slots__ = ("file",)
    FILE_FIELD_NUMBER: _ClassVar[int]
    file: _options_pb2.UploadedFile
    def __init__(self, file: _Optional[_Union[_options_pb2.UploadedFile, _Mapping]] = ...) -> None: ...

class InstallPluginResponse(_message.Message):
    __slots__ = ("id", "status", "message", "plugin")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    message: str
    plugin: Plugin
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., plugin: _Optional[_Union[Plugin, _Mapping]] = ...) -> None: ...

class EnablePluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class DisablePluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class StartPluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class StopPluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class ReloadPluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class ReloadPluginResponse(_message.Message):
    __slots__ = ("id", "status", "message", "plugin")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    message: str
    plugin: Plugin
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., message: _Optional[str] = ..., plugin: _Optional[_Union[Plugin, _Mapping]] = ...) -> None: ...

class DeletePluginRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class DeletePluginResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPluginLogsRequest(_message.Message):
    __slots__ = ("plugin_id", "tail")
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    tail: int
    def __init__(self, plugin_id: _Optional[str] = ..., tail: _Optional[int] = ...) -> None: ...

class PluginLogLine(_message.Message):
    __slots__ = ("time", "stream", "text")
    TIME_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    stream: str
    text: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class GetPluginLogsResponse(_message.Message):
    __slots__ = ("id", "lines", "dropped")
    ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    id: str
    lines: _containers.RepeatedCompositeFieldContainer[PluginLogLine]
    dropped: int
    def __init__(self, id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PluginLogLine, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class GetPluginStatsRequest(_message.Message):
    __slots__ = ("plugin_id",)
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    def __init__(self, plugin_id: _Optional[str] = ...) -> None: ...

class LatencyPercentiles(_message.Message):
    __slots__ = ("p50", "p95", "p99", "max")
    P50_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    p50: float
    p95: float
    p99: float
    max: float
    def __init__(self, p50: _Optional[float] = ..., p95: _Optional[float] = ..., p99: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class PluginStats(_message.Message):
    __slots__ = ("id", "state", "calls", "errors", "latency_ms", "restarts", "cpu_seconds", "memory_bytes", "uptime_seconds", "pid", "memory_limit_bytes", "open_files_limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    OPEN_FILES_LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: PluginState
    calls: int
    errors: int
    latency_ms: LatencyPercentiles
    restarts: int
    cpu_seconds: float
    memory_bytes: int
    uptime_seconds: float
    pid: int
    memory_limit_bytes: int
    open_files_limit: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[PluginState, str]] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., latency_ms: _Optional[_Union[LatencyPercentiles, _Mapping]] = ..., restarts: _Optional[int] = ..., cpu_seconds: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., uptime_seconds: _Optional[float] = ..., pid: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., open_files_limit: _Optional[int] = ...) -> None: ...

class WatchPluginRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PluginRoutes(_message.Message):
    __slots__ = ("plugin_id", "version", "api_prefix", "services", "descriptor_set", "sha256")
    PLUGIN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_SET_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    plugin_id: str
    version: str
    api_prefix: str
    services: _containers.RepeatedScalarFieldContainer[str]
    descriptor_set: bytes
    sha256: str
    def __init__(self, plugin_id: _Optional[str] = ..., version: _Optional[str] = ..., api_prefix: _Optional[str] = ..., services: _Optional[_Iterable[str]] = ..., descriptor_set: _Optional[bytes] = ..., sha256: _Optional[str] = ...) -> None: ...

class PluginRouteTable(_message.Message):
    __slots__ = ("generation", "plugins")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    generation: int
    plugins: _containers.RepeatedCompositeFieldContainer[PluginRoutes]
    def __init__(self, generation: _Optional[int] = ..., plugins: _Optional[_Iterable[_Union[PluginRoutes, _Mapping]]] = ...) -> None: ...
