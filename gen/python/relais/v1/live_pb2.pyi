import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from relais.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchChatRequest(_message.Message):
    __slots__ = ("chat_id", "connection_id")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    connection_id: str
    def __init__(self, chat_id: _Optional[int] = ..., connection_id: _Optional[str] = ...) -> None: ...

class UserTyping(_message.Message):
    __slots__ = ("chat_id", "user_id", "is_typing", "connection_id")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IS_TYPING_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    user_id: int
    is_typing: bool
    connection_id: str
    def __init__(self, chat_id: _Optional[int] = ..., user_id: _Optional[int] = ..., is_typing: _Optional[bool] = ..., connection_id: _Optional[str] = ...) -> None: ...

class Watching(_message.Message):
    __slots__ = ("chat_id",)
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    def __init__(self, chat_id: _Optional[int] = ...) -> None: ...

class WatchChatResponse(_message.Message):
    __slots__ = ("watching", "new_message", "user_typing")
    WATCHING_FIELD_NUMBER: _ClassVar[int]
    NEW_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    USER_TYPING_FIELD_NUMBER: _ClassVar[int]
    watching: Watching
    new_message: _chat_pb2.ChatMessage
    user_typing: UserTyping
    def __init__(self, watching: _Optional[_Union[Watching, _Mapping]] = ..., new_message: _Optional[_Union[_chat_pb2.ChatMessage, _Mapping]] = ..., user_typing: _Optional[_Union[UserTyping, _Mapping]] = ...) -> None: ...

class SetTypingRequest(_message.Message):
    __slots__ = ("chat_id", "is_typing", "connection_id")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    IS_TYPING_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    is_typing: bool
    connection_id: str
    def __init__(self, chat_id: _Optional[int] = ..., is_typing: _Optional[bool] = ..., connection_id: _Optional[str] = ...) -> None: ...

class SetTypingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchSessionResponse(_message.Message):
    __slots__ = ("session_id", "user_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: int
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("topics",)
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, topics: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event", "data", "ts")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    event: str
    data: _struct_pb2.Struct
    ts: _timestamp_pb2.Timestamp
    def __init__(self, event: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
