import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolSourceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_SOURCE_STATE_UNSPECIFIED: _ClassVar[ToolSourceState]
    TOOL_SOURCE_STATE_CONNECTING: _ClassVar[ToolSourceState]
    TOOL_SOURCE_STATE_CONNECTED: _ClassVar[ToolSourceState]
    TOOL_SOURCE_STATE_DISCONNECTED: _ClassVar[ToolSourceState]
TOOL_SOURCE_STATE_UNSPECIFIED: ToolSourceState
TOOL_SOURCE_STATE_CONNECTING: ToolSourceState
TOOL_SOURCE_STATE_CONNECTED: ToolSourceState
TOOL_SOURCE_STATE_DISCONNECTED: ToolSourceState

class ListToolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters", "category", "source", "title", "read_only", "destructive", "admin_only", "permission")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    DESTRUCTIVE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ONLY_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    category: str
    source: str
    title: str
    read_only: bool
    destructive: bool
    admin_only: bool
    permission: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., category: _Optional[str] = ..., source: _Optional[str] = ..., title: _Optional[str] = ..., read_only: _Optional[bool] = ..., destructive: _Optional[bool] = ..., admin_only: _Optional[bool] = ..., permission: _Optional[str] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("count", "tools")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    count: int
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    def __init__(self, count: _Optional[int] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ...) -> None: ...

class GetToolRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CallToolRequest(_message.Message):
    __slots__ = ("name", "arguments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CallToolResponse(_message.Message):
    __slots__ = ("tool", "content", "is_error", "structured_content", "duration_ms")
    TOOL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_CONTENT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    tool: str
    content: str
    is_error: bool
    structured_content: _struct_pb2.Struct
    duration_ms: float
    def __init__(self, tool: _Optional[str] = ..., content: _Optional[str] = ..., is_error: _Optional[bool] = ..., structured_content: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class ToolSource(_message.Message):
    __slots__ = ("name", "kind", "state", "error", "tools_count", "connected_at", "failures", "next_attempt_at", "admin_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TOOLS_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    state: ToolSourceState
    error: str
    tools_count: int
    connected_at: _timestamp_pb2.Timestamp
    failures: int
    next_attempt_at: _timestamp_pb2.Timestamp
    admin_only: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[ToolSourceState, str]] = ..., error: _Optional[str] = ..., tools_count: _Optional[int] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., failures: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., admin_only: _Optional[bool] = ...) -> None: ...

class ListToolSourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListToolSourcesResponse(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[ToolSource]
    def __init__(self, sources: _Optional[_Iterable[_Union[ToolSource, _Mapping]]] = ...) -> None: ...

class ReconnectToolSourceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
