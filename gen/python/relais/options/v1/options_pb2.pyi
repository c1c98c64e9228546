from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_FORMAT_UNSPECIFIED: _ClassVar[ErrorFormat]
    ERROR_FORMAT_OPENAI: _ClassVar[ErrorFormat]

class StreamDialect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_DIALECT_UNSPECIFIED: _ClassVar[StreamDialect]
    STREAM_DIALECT_SSE: _ClassVar[StreamDialect]
    STREAM_DIALECT_LOCAL_ASSISTANT_WS: _ClassVar[StreamDialect]
    STREAM_DIALECT_FOYERGPT_SSE: _ClassVar[StreamDialect]
    STREAM_DIALECT_ORCHESTRATOR_WS: _ClassVar[StreamDialect]
    STREAM_DIALECT_ORCHESTRATOR_SSE: _ClassVar[StreamDialect]
    STREAM_DIALECT_SOCKETIO_ROOMS: _ClassVar[StreamDialect]
    STREAM_DIALECT_XCORE_EVENTS: _ClassVar[StreamDialect]
    STREAM_DIALECT_OPENAI_CHAT: _ClassVar[StreamDialect]
    STREAM_DIALECT_OPENAI_COMPLETION: _ClassVar[StreamDialect]
ERROR_FORMAT_UNSPECIFIED: ErrorFormat
ERROR_FORMAT_OPENAI: ErrorFormat
STREAM_DIALECT_UNSPECIFIED: StreamDialect
STREAM_DIALECT_SSE: StreamDialect
STREAM_DIALECT_LOCAL_ASSISTANT_WS: StreamDialect
STREAM_DIALECT_FOYERGPT_SSE: StreamDialect
STREAM_DIALECT_ORCHESTRATOR_WS: StreamDialect
STREAM_DIALECT_ORCHESTRATOR_SSE: StreamDialect
STREAM_DIALECT_SOCKETIO_ROOMS: StreamDialect
STREAM_DIALECT_XCORE_EVENTS: StreamDialect
STREAM_DIALECT_OPENAI_CHAT: StreamDialect
STREAM_DIALECT_OPENAI_COMPLETION: StreamDialect
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
HTTP_FIELD_NUMBER: _ClassVar[int]
http: _descriptor.FieldDescriptor
STREAM_FIELD_NUMBER: _ClassVar[int]
stream: _descriptor.FieldDescriptor
IDEMPOTENCY_FIELD_NUMBER: _ClassVar[int]
idempotency: _descriptor.FieldDescriptor
BOUNDS_FIELD_NUMBER: _ClassVar[int]
bounds: _descriptor.FieldDescriptor

class AccessRule(_message.Message):
    __slots__ = ("public", "allow_anonymous", "permission", "unmetered")
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    UNMETERED_FIELD_NUMBER: _ClassVar[int]
    public: bool
    allow_anonymous: bool
    permission: str
    unmetered: bool
    def __init__(self, public: _Optional[bool] = ..., allow_anonymous: _Optional[bool] = ..., permission: _Optional[str] = ..., unmetered: _Optional[bool] = ...) -> None: ...

class SetCookie(_message.Message):
    __slots__ = ("name", "field", "http_only", "secure", "same_site", "path", "max_age_field")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    HTTP_ONLY_FIELD_NUMBER: _ClassVar[int]
    SECURE_FIELD_NUMBER: _ClassVar[int]
    SAME_SITE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_FIELD_FIELD_NUMBER: _ClassVar[int]
    name: str
    field: str
    http_only: bool
    secure: bool
    same_site: str
    path: str
    max_age_field: str
    def __init__(self, name: _Optional[str] = ..., field: _Optional[str] = ..., http_only: _Optional[bool] = ..., secure: _Optional[bool] = ..., same_site: _Optional[str] = ..., path: _Optional[str] = ..., max_age_field: _Optional[str] = ...) -> None: ...

class JsonEnvelope(_message.Message):
    __slots__ = ("data_field", "constants")
    class ConstantsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_FIELD_FIELD_NUMBER: _ClassVar[int]
    CONSTANTS_FIELD_NUMBER: _ClassVar[int]
    data_field: str
    constants: _containers.ScalarMap[str, str]
    def __init__(self, data_field: _Optional[str] = ..., constants: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BindingBehavior(_message.Message):
    __slots__ = ("method", "path", "envelope", "success_status", "error_format")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FORMAT_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    envelope: JsonEnvelope
    success_status: int
    error_format: ErrorFormat
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., envelope: _Optional[_Union[JsonEnvelope, _Mapping]] = ..., success_status: _Optional[int] = ..., error_format: _Optional[_Union[ErrorFormat, str]] = ...) -> None: ...

class HttpBehavior(_message.Message):
    __slots__ = ("success_status", "set_cookies", "bindings", "clear_cookies", "timeout_seconds", "max_body_bytes", "status_when", "error_format")
    SUCCESS_STATUS_FIELD_NUMBER: _ClassVar[int]
    SET_COOKIES_FIELD_NUMBER: _ClassVar[int]
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_COOKIES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_BODY_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_WHEN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FORMAT_FIELD_NUMBER: _ClassVar[int]
    success_status: int
    set_cookies: _containers.RepeatedCompositeFieldContainer[SetCookie]
    bindings: _containers.RepeatedCompositeFieldContainer[BindingBehavior]
    clear_cookies: _containers.RepeatedScalarFieldContainer[str]
    timeout_seconds: int
    max_body_bytes: int
    status_when: _containers.RepeatedCompositeFieldContainer[StatusWhen]
    error_format: ErrorFormat
    def __init__(self, success_status: _Optional[int] = ..., set_cookies: _Optional[_Iterable[_Union[SetCookie, _Mapping]]] = ..., bindings: _Optional[_Iterable[_Union[BindingBehavior, _Mapping]]] = ..., clear_cookies: _Optional[_Iterable[str]] = ..., timeout_seconds: _Optional[int] = ..., max_body_bytes: _Optional[int] = ..., status_when: _Optional[_Iterable[_Union[StatusWhen, _Mapping]]] = ..., error_format: _Optional[_Union[ErrorFormat, str]] = ...) -> None: ...

class StatusWhen(_message.Message):
    __slots__ = ("field", "value", "status")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: str
    status: int
    def __init__(self, field: _Optional[str] = ..., value: _Optional[str] = ..., status: _Optional[int] = ...) -> None: ...

class Idempotency(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bool
    def __init__(self, key: _Optional[bool] = ...) -> None: ...

class WebSocketRoute(_message.Message):
    __slots__ = ("path", "dialect")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIALECT_FIELD_NUMBER: _ClassVar[int]
    path: str
    dialect: StreamDialect
    def __init__(self, path: _Optional[str] = ..., dialect: _Optional[_Union[StreamDialect, str]] = ...) -> None: ...

class StreamBehavior(_message.Message):
    __slots__ = ("sse", "websockets", "stream_field", "result_event", "json_list_unless_event_stream", "usage_field")
    SSE_FIELD_NUMBER: _ClassVar[int]
    WEBSOCKETS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_FIELD_NUMBER: _ClassVar[int]
    RESULT_EVENT_FIELD_NUMBER: _ClassVar[int]
    JSON_LIST_UNLESS_EVENT_STREAM_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_FIELD_NUMBER: _ClassVar[int]
    sse: StreamDialect
    websockets: _containers.RepeatedCompositeFieldContainer[WebSocketRoute]
    stream_field: str
    result_event: str
    json_list_unless_event_stream: bool
    usage_field: str
    def __init__(self, sse: _Optional[_Union[StreamDialect, str]] = ..., websockets: _Optional[_Iterable[_Union[WebSocketRoute, _Mapping]]] = ..., stream_field: _Optional[str] = ..., result_event: _Optional[str] = ..., json_list_unless_event_stream: _Optional[bool] = ..., usage_field: _Optional[str] = ...) -> None: ...

class UploadedFile(_message.Message):
    __slots__ = ("filename", "content_type", "data")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    data: bytes
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class FieldBounds(_message.Message):
    __slots__ = ("required", "min_length", "max_length", "minimum", "maximum", "pattern", "one_of")
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ONE_OF_FIELD_NUMBER: _ClassVar[int]
    required: bool
    min_length: int
    max_length: int
    minimum: float
    maximum: float
    pattern: str
    one_of: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, required: _Optional[bool] = ..., min_length: _Optional[int] = ..., max_length: _Optional[int] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., pattern: _Optional[str] = ..., one_of: _Optional[_Iterable[str]] = ...) -> None: ...
