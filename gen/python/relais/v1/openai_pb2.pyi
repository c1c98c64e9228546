from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from relais.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatCompletionRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_COMPLETION_ROLE_UNSPECIFIED: _ClassVar[ChatCompletionRole]
    CHAT_COMPLETION_ROLE_SYSTEM: _ClassVar[ChatCompletionRole]
    CHAT_COMPLETION_ROLE_DEVELOPER: _ClassVar[ChatCompletionRole]
    CHAT_COMPLETION_ROLE_USER: _ClassVar[ChatCompletionRole]
    CHAT_COMPLETION_ROLE_ASSISTANT: _ClassVar[ChatCompletionRole]
    CHAT_COMPLETION_ROLE_TOOL: _ClassVar[ChatCompletionRole]
CHAT_COMPLETION_ROLE_UNSPECIFIED: ChatCompletionRole
CHAT_COMPLETION_ROLE_SYSTEM: ChatCompletionRole
CHAT_COMPLETION_ROLE_DEVELOPER: ChatCompletionRole
CHAT_COMPLETION_ROLE_USER: ChatCompletionRole
CHAT_COMPLETION_ROLE_ASSISTANT: ChatCompletionRole
CHAT_COMPLETION_ROLE_TOOL: ChatCompletionRole

class ListOpenAIModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOpenAIModelsResponse(_message.Message):
    __slots__ = ("object", "data")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    object: str
    data: _containers.RepeatedCompositeFieldContainer[OpenAIModel]
    def __init__(self, object: _Optional[str] = ..., data: _Optional[_Iterable[_Union[OpenAIModel, _Mapping]]] = ...) -> None: ...

class OpenAIModel(_message.Message):
    __slots__ = ("id", "object", "created", "owned_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OWNED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    object: str
    created: int
    owned_by: str
    def __init__(self, id: _Optional[str] = ..., object: _Optional[str] = ..., created: _Optional[int] = ..., owned_by: _Optional[str] = ...) -> None: ...

class GetOpenAIModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ChatCompletionMessage(_message.Message):
    __slots__ = ("role", "content", "name", "tool_calls", "tool_call_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    role: ChatCompletionRole
    content: _struct_pb2.Value
    name: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ChatCompletionToolCall]
    tool_call_id: str
    def __init__(self, role: _Optional[_Union[ChatCompletionRole, str]] = ..., content: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., name: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ChatCompletionToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ...) -> None: ...

class ChatCompletionToolCall(_message.Message):
    __slots__ = ("id", "type", "function")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    function: ChatCompletionFunctionCall
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., function: _Optional[_Union[ChatCompletionFunctionCall, _Mapping]] = ...) -> None: ...

class ChatCompletionFunctionCall(_message.Message):
    __slots__ = ("name", "arguments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: str
    def __init__(self, name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class ChatCompletionTool(_message.Message):
    __slots__ = ("type", "function")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    type: str
    function: ChatCompletionFunction
    def __init__(self, type: _Optional[str] = ..., function: _Optional[_Union[ChatCompletionFunction, _Mapping]] = ...) -> None: ...

class ChatCompletionFunction(_message.Message):
    __slots__ = ("name", "description", "parameters", "strict")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters: _struct_pb2.Struct
    strict: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., strict: _Optional[bool] = ...) -> None: ...

class ChatCompletionResponseFormat(_message.Message):
    __slots__ = ("type", "json_schema")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    type: str
    json_schema: ChatCompletionJsonSchema
    def __init__(self, type: _Optional[str] = ..., json_schema: _Optional[_Union[ChatCompletionJsonSchema, _Mapping]] = ...) -> None: ...

class ChatCompletionJsonSchema(_message.Message):
    __slots__ = ("name", "description", "schema", "strict")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    schema: _struct_pb2.Struct
    strict: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., strict: _Optional[bool] = ...) -> None: ...

class ChatCompletionStreamOptions(_message.Message):
    __slots__ = ("include_usage",)
    INCLUDE_USAGE_FIELD_NUMBER: _ClassVar[int]
    include_usage: bool
    def __init__(self, include_usage: _Optional[bool] = ...) -> None: ...

class CreateChatCompletionRequest(_message.Message):
    __slots__ = ("model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n", "stream", "stream_options", "tools", "tool_choice", "response_format", "store", "metadata", "relais_tools")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STREAM_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RELAIS_TOOLS_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatCompletionMessage]
    temperature: float
    top_p: float
    max_tokens: int
    max_completion_tokens: int
    stop: _struct_pb2.Value
    seed: int
    n: int
    stream: bool
    stream_options: ChatCompletionStreamOptions
    tools: _containers.RepeatedCompositeFieldContainer[ChatCompletionTool]
    tool_choice: _struct_pb2.Value
    response_format: ChatCompletionResponseFormat
    store: bool
    metadata: _containers.ScalarMap[str, str]
    relais_tools: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatCompletionMessage, _Mapping]]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_tokens: _Optional[int] = ..., max_completion_tokens: _Optional[int] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., seed: _Optional[int] = ..., n: _Optional[int] = ..., stream: _Optional[bool] = ..., stream_options: _Optional[_Union[ChatCompletionStreamOptions, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[ChatCompletionTool, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[ChatCompletionResponseFormat, _Mapping]] = ..., store: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., relais_tools: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateCompletionRequest(_message.Message):
    __slots__ = ("model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options", "echo")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STREAM_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ECHO_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: _struct_pb2.Value
    max_tokens: int
    temperature: float
    top_p: float
    stop: _struct_pb2.Value
    seed: int
    n: int
    stream: bool
    stream_options: ChatCompletionStreamOptions
    echo: bool
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., seed: _Optional[int] = ..., n: _Optional[int] = ..., stream: _Optional[bool] = ..., stream_options: _Optional[_Union[ChatCompletionStreamOptions, _Mapping]] = ..., echo: _Optional[bool] = ...) -> None: ...

class CreateEmbeddingsRequest(_message.Message):
    __slots__ = ("model", "input", "encoding_format", "dimensions", "user")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    model: str
    input: _struct_pb2.Value
    encoding_format: str
    dimensions: int
    user: str
    def __init__(self, model: _Optional[str] = ..., input: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., encoding_format: _Optional[str] = ..., dimensions: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class CreateEmbeddingsResponse(_message.Message):
    __slots__ = ("object", "data", "model", "usage")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    object: str
    data: _containers.RepeatedCompositeFieldContainer[OpenAIEmbedding]
    model: str
    usage: OpenAIEmbeddingUsage
    def __init__(self, object: _Optional[str] = ..., data: _Optional[_Iterable[_Union[OpenAIEmbedding, _Mapping]]] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[OpenAIEmbeddingUsage, _Mapping]] = ...) -> None: ...

class OpenAIEmbedding(_message.Message):
    __slots__ = ("object", "index", "embedding")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    object: str
    index: int
    embedding: _struct_pb2.Value
    def __init__(self, object: _Optional[str] = ..., index: _Optional[int] = ..., embedding: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class OpenAIEmbeddingUsage(_message.Message):
    __slots__ = ("prompt_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class GetOpenAIUsageRequest(_message.Message):
    __slots__ = ("user_id", "days")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    days: int
    def __init__(self, user_id: _Optional[int] = ..., days: _Optional[int] = ...) -> None: ...

class GetOpenAIUsageResponse(_message.Message):
    __slots__ = ("object", "data", "user_id")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    object: str
    data: _containers.RepeatedCompositeFieldContainer[OpenAIUsage]
    user_id: int
    def __init__(self, object: _Optional[str] = ..., data: _Optional[_Iterable[_Union[OpenAIUsage, _Mapping]]] = ..., user_id: _Optional[int] = ...) -> None: ...

class OpenAIUsage(_message.Message):
    __slots__ = ("date", "endpoint", "model", "requests", "prompt_tokens", "completion_tokens")
    DATE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    date: str
    endpoint: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, date: _Optional[str] = ..., endpoint: _Optional[str] = ..., model: _Optional[str] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...
