import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from relais.v1 import events_pb2 as _events_pb2
from relais.v1 import retrieval_pb2 as _retrieval_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_ROLE_UNSPECIFIED: _ClassVar[MessageRole]
    MESSAGE_ROLE_USER: _ClassVar[MessageRole]
    MESSAGE_ROLE_ASSISTANT: _ClassVar[MessageRole]

class MessageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATUS_UNSPECIFIED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_COMPLETE: _ClassVar[MessageStatus]
    MESSAGE_STATUS_INCOMPLETE: _ClassVar[MessageStatus]
    MESSAGE_STATUS_ERROR: _ClassVar[MessageStatus]
MESSAGE_ROLE_UNSPECIFIED: MessageRole
MESSAGE_ROLE_USER: MessageRole
MESSAGE_ROLE_ASSISTANT: MessageRole
MESSAGE_STATUS_UNSPECIFIED: MessageStatus
MESSAGE_STATUS_COMPLETE: MessageStatus
MESSAGE_STATUS_INCOMPLETE: MessageStatus
MESSAGE_STATUS_ERROR: MessageStatus

class ChatMessage(_message.Message):
    __slots__ = ("id", "chat_id", "role", "content", "llm_model", "status", "usage", "created_at", "sources", "tool_steps", "tools_used")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    LLM_MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    TOOL_STEPS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_USED_FIELD_NUMBER: _ClassVar[int]
    id: int
    chat_id: int
    role: MessageRole
    content: str
    llm_model: str
    status: MessageStatus
    usage: _events_pb2.TokenUsage
    created_at: _timestamp_pb2.Timestamp
    sources: _containers.RepeatedCompositeFieldContainer[_retrieval_pb2.Passage]
    tool_steps: _containers.RepeatedCompositeFieldContainer[ToolStep]
    tools_used: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., chat_id: _Optional[int] = ..., role: _Optional[_Union[MessageRole, str]] = ..., content: _Optional[str] = ..., llm_model: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ..., usage: _Optional[_Union[_events_pb2.TokenUsage, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_retrieval_pb2.Passage, _Mapping]]] = ..., tool_steps: _Optional[_Iterable[_Union[ToolStep, _Mapping]]] = ..., tools_used: _Optional[_Iterable[str]] = ...) -> None: ...

class ToolStep(_message.Message):
    __slots__ = ("call", "result")
    CALL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    call: _events_pb2.ToolCall
    result: _events_pb2.ToolResult
    def __init__(self, call: _Optional[_Union[_events_pb2.ToolCall, _Mapping]] = ..., result: _Optional[_Union[_events_pb2.ToolResult, _Mapping]] = ...) -> None: ...

class ChatAgent(_message.Message):
    __slots__ = ("id", "name", "avatar_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    avatar_url: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., avatar_url: _Optional[str] = ...) -> None: ...

class Chat(_message.Message):
    __slots__ = ("id", "title", "user_id", "agent_id", "agent", "messages", "message_count", "last_message_at", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    title: str
    user_id: int
    agent_id: int
    agent: ChatAgent
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    message_count: int
    last_message_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., title: _Optional[str] = ..., user_id: _Optional[int] = ..., agent_id: _Optional[int] = ..., agent: _Optional[_Union[ChatAgent, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., message_count: _Optional[int] = ..., last_message_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListChatsRequest(_message.Message):
    __slots__ = ("limit", "offset")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    limit: int
    offset: int
    def __init__(self, limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListChatsResponse(_message.Message):
    __slots__ = ("chats", "total", "limit", "offset")
    CHATS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    chats: _containers.RepeatedCompositeFieldContainer[Chat]
    total: int
    limit: int
    offset: int
    def __init__(self, chats: _Optional[_Iterable[_Union[Chat, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class CreateChatRequest(_message.Message):
    __slots__ = ("agent_id", "title")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    agent_id: int
    title: str
    def __init__(self, agent_id: _Optional[int] = ..., title: _Optional[str] = ...) -> None: ...

class GetChatRequest(_message.Message):
    __slots__ = ("chat_id",)
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    def __init__(self, chat_id: _Optional[int] = ...) -> None: ...

class UpdateChatRequest(_message.Message):
    __slots__ = ("chat_id", "title")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    title: str
    def __init__(self, chat_id: _Optional[int] = ..., title: _Optional[str] = ...) -> None: ...

class DeleteChatRequest(_message.Message):
    __slots__ = ("chat_id",)
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    def __init__(self, chat_id: _Optional[int] = ...) -> None: ...

class DeleteChatResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("chat_id", "content", "files", "tools", "tool_choice")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    content: str
    files: _containers.RepeatedScalarFieldContainer[int]
    tools: _containers.RepeatedScalarFieldContainer[str]
    tool_choice: str
    def __init__(self, chat_id: _Optional[int] = ..., content: _Optional[str] = ..., files: _Optional[_Iterable[int]] = ..., tools: _Optional[_Iterable[str]] = ..., tool_choice: _Optional[str] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("user_message", "assistant_message")
    USER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    user_message: ChatMessage
    assistant_message: ChatMessage
    def __init__(self, user_message: _Optional[_Union[ChatMessage, _Mapping]] = ..., assistant_message: _Optional[_Union[ChatMessage, _Mapping]] = ...) -> None: ...

class ConverseRequest(_message.Message):
    __slots__ = ("message", "model", "conversation_id", "stream", "tools", "tool_choice")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    message: str
    model: str
    conversation_id: int
    stream: bool
    tools: _containers.RepeatedScalarFieldContainer[str]
    tool_choice: str
    def __init__(self, message: _Optional[str] = ..., model: _Optional[str] = ..., conversation_id: _Optional[int] = ..., stream: _Optional[bool] = ..., tools: _Optional[_Iterable[str]] = ..., tool_choice: _Optional[str] = ...) -> None: ...

class ListConversationsRequest(_message.Message):
    __slots__ = ("limit", "offset", "search")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    limit: int
    offset: int
    search: str
    def __init__(self, limit: _Optional[int] = ..., offset: _Optional[int] = ..., search: _Optional[str] = ...) -> None: ...

class ListConversationsResponse(_message.Message):
    __slots__ = ("conversations", "total", "limit", "offset")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Chat]
    total: int
    limit: int
    offset: int
    def __init__(self, conversations: _Optional[_Iterable[_Union[Chat, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteConversationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stats(_message.Message):
    __slots__ = ("conversations", "messages", "user_messages", "assistant_messages", "prompt_tokens", "completion_tokens", "agents", "models", "uptime_seconds", "memory_entries", "uptime", "tools_count", "models_available")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    USER_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    TOOLS_COUNT_FIELD_NUMBER: _ClassVar[int]
    MODELS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    conversations: int
    messages: int
    user_messages: int
    assistant_messages: int
    prompt_tokens: int
    completion_tokens: int
    agents: int
    models: int
    uptime_seconds: int
    memory_entries: int
    uptime: str
    tools_count: int
    models_available: int
    def __init__(self, conversations: _Optional[int] = ..., messages: _Optional[int] = ..., user_messages: _Optional[int] = ..., assistant_messages: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., agents: _Optional[int] = ..., models: _Optional[int] = ..., uptime_seconds: _Optional[int] = ..., memory_entries: _Optional[int] = ..., uptime: _Optional[str] = ..., tools_count: _Optional[int] = ..., models_available: _Optional[int] = ...) -> None: ...

class StreamMessageRequest(_message.Message):
    __slots__ = ("chat_id", "message", "tools", "tool_choice")
    CHAT_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    chat_id: int
    message: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    tool_choice: str
    def __init__(self, chat_id: _Optional[int] = ..., message: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ..., tool_choice: _Optional[str] = ...) -> None: ...
