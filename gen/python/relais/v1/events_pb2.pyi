from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_CANCELLED: _ClassVar[FinishReason]
    FINISH_REASON_ERROR: _ClassVar[FinishReason]
    FINISH_REASON_TOOL_CALLS: _ClassVar[FinishReason]

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_STARTED: _ClassVar[StreamState]
    STREAM_STATE_QUEUED: _ClassVar[StreamState]
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_CANCELLED: FinishReason
FINISH_REASON_ERROR: FinishReason
FINISH_REASON_TOOL_CALLS: FinishReason
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_STARTED: StreamState
STREAM_STATE_QUEUED: StreamState

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("state", "model", "backend", "chat_id", "user_message_id", "queue_position")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    state: StreamState
    model: str
    backend: str
    chat_id: int
    user_message_id: int
    queue_position: int
    def __init__(self, state: _Optional[_Union[StreamState, str]] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., chat_id: _Optional[int] = ..., user_message_id: _Optional[int] = ..., queue_position: _Optional[int] = ...) -> None: ...

class TokenDelta(_message.Message):
    __slots__ = ("text", "token_count", "message_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    token_count: int
    message_id: int
    def __init__(self, text: _Optional[str] = ..., token_count: _Optional[int] = ..., message_id: _Optional[int] = ...) -> None: ...

class Think(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("text", "steps")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    text: str
    steps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., steps: _Optional[_Iterable[str]] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("call_id", "tool", "params")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    params: _struct_pb2.Struct
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("call_id", "tool", "content", "is_error")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    tool: str
    content: str
    is_error: bool
    def __init__(self, call_id: _Optional[str] = ..., tool: _Optional[str] = ..., content: _Optional[str] = ..., is_error: _Optional[bool] = ...) -> None: ...

class FinalMessage(_message.Message):
    __slots__ = ("text", "finish_reason", "model", "message_id", "chat_id", "tools_used")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    TOOLS_USED_FIELD_NUMBER: _ClassVar[int]
    text: str
    finish_reason: FinishReason
    model: str
    message_id: int
    chat_id: int
    tools_used: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, text: _Optional[str] = ..., finish_reason: _Optional[_Union[FinishReason, str]] = ..., model: _Optional[str] = ..., message_id: _Optional[int] = ..., chat_id: _Optional[int] = ..., tools_used: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "message", "partial_text", "message_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    partial_text: str
    message_id: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., partial_text: _Optional[str] = ..., message_id: _Optional[int] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamEvent(_message.Message):
    __slots__ = ("seq", "req_id", "usage", "status", "token", "think", "plan", "tool_call", "tool_result", "final", "error", "ping")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    THINK_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    seq: int
    req_id: str
    usage: TokenUsage
    status: StreamStatus
    token: TokenDelta
    think: Think
    plan: Plan
    tool_call: ToolCall
    tool_result: ToolResult
    final: FinalMessage
    error: StreamError
    ping: Ping
    def __init__(self, seq: _Optional[int] = ..., req_id: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., status: _Optional[_Union[StreamStatus, _Mapping]] = ..., token: _Optional[_Union[TokenDelta, _Mapping]] = ..., think: _Optional[_Union[Think, _Mapping]] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ..., final: _Optional[_Union[FinalMessage, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ...) -> None: ...
