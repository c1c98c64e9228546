from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ActionDescription(_message.Message):
    __slots__ = ("name", "description", "params_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params_schema: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params_schema: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("services", "actions", "mcp_socket", "tools")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    MCP_SOCKET_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedScalarFieldContainer[str]
    actions: _containers.RepeatedCompositeFieldContainer[ActionDescription]
    mcp_socket: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, services: _Optional[_Iterable[str]] = ..., actions: _Optional[_Iterable[_Union[ActionDescription, _Mapping]]] = ..., mcp_socket: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ...) -> None: ...

class RunActionRequest(_message.Message):
    __slots__ = ("name", "params_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    params_json: str
    def __init__(self, name: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class RunActionResponse(_message.Message):
    __slots__ = ("output_json",)
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    output_json: str
    def __init__(self, output_json: _Optional[str] = ...) -> None: ...
