import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
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

class EntityType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITY_TYPE_UNSPECIFIED: _ClassVar[EntityType]
    ENTITY_TYPE_AGENT: _ClassVar[EntityType]
    ENTITY_TYPE_CHAT: _ClassVar[EntityType]
    ENTITY_TYPE_USER: _ClassVar[EntityType]
ENTITY_TYPE_UNSPECIFIED: EntityType
ENTITY_TYPE_AGENT: EntityType
ENTITY_TYPE_CHAT: EntityType
ENTITY_TYPE_USER: EntityType

class ReindexRequest(_message.Message):
    __slots__ = ("full", "path", "stream")
    FULL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    full: bool
    path: str
    stream: bool
    def __init__(self, full: _Optional[bool] = ..., path: _Optional[str] = ..., stream: _Optional[bool] = ...) -> None: ...

class ReindexProgress(_message.Message):
    __slots__ = ("files_total", "files_done", "path", "chunks")
    FILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    files_total: int
    files_done: int
    path: str
    chunks: int
    def __init__(self, files_total: _Optional[int] = ..., files_done: _Optional[int] = ..., path: _Optional[str] = ..., chunks: _Optional[int] = ...) -> None: ...

class IndexFailure(_message.Message):
    __slots__ = ("path", "reason")
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    path: str
    reason: str
    def __init__(self, path: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReindexResult(_message.Message):
    __slots__ = ("indexed", "unchanged", "removed", "chunks", "failed", "seconds")
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    indexed: int
    unchanged: int
    removed: int
    chunks: int
    failed: _containers.RepeatedCompositeFieldContainer[IndexFailure]
    seconds: float
    def __init__(self, indexed: _Optional[int] = ..., unchanged: _Optional[int] = ..., removed: _Optional[int] = ..., chunks: _Optional[int] = ..., failed: _Optional[_Iterable[_Union[IndexFailure, _Mapping]]] = ..., seconds: _Optional[float] = ...) -> None: ...

class ReindexEvent(_message.Message):
    __slots__ = ("sequence", "progress", "done")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    progress: ReindexProgress
    done: ReindexResult
    def __init__(self, sequence: _Optional[int] = ..., progress: _Optional[_Union[ReindexProgress, _Mapping]] = ..., done: _Optional[_Union[ReindexResult, _Mapping]] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("query", "top_k")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    query: str
    top_k: int
    def __init__(self, query: _Optional[str] = ..., top_k: _Optional[int] = ...) -> None: ...

class SourceSpan(_message.Message):
    __slots__ = ("path", "sha256", "chunk_id", "start", "end", "document_id")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    chunk_id: str
    start: int
    end: int
    document_id: int
    def __init__(self, path: _Optional[str] = ..., sha256: _Optional[str] = ..., chunk_id: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., document_id: _Optional[int] = ...) -> None: ...

class Passage(_message.Message):
    __slots__ = ("text", "score", "source")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    text: str
    score: float
    source: SourceSpan
    def __init__(self, text: _Optional[str] = ..., score: _Optional[float] = ..., source: _Optional[_Union[SourceSpan, _Mapping]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Passage]
    def __init__(self, results: _Optional[_Iterable[_Union[Passage, _Mapping]]] = ...) -> None: ...

class AddMemoryRequest(_message.Message):
    __slots__ = ("content", "metadata")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    content: str
    metadata: _struct_pb2.Struct
    def __init__(self, content: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class MemoryEntry(_message.Message):
    __slots__ = ("id", "content", "metadata", "agent_id", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    content: str
    metadata: _struct_pb2.Struct
    agent_id: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., content: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., agent_id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchMemoryRequest(_message.Message):
    __slots__ = ("q", "limit")
    Q_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    q: str
    limit: int
    def __init__(self, q: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class MemoryMatch(_message.Message):
    __slots__ = ("id", "content", "metadata", "agent_id", "created_at", "score")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    id: int
    content: str
    metadata: _struct_pb2.Struct
    agent_id: int
    created_at: _timestamp_pb2.Timestamp
    score: float
    def __init__(self, id: _Optional[int] = ..., content: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., agent_id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class SearchMemoryResponse(_message.Message):
    __slots__ = ("query", "results")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    query: str
    results: _containers.RepeatedCompositeFieldContainer[MemoryMatch]
    def __init__(self, query: _Optional[str] = ..., results: _Optional[_Iterable[_Union[MemoryMatch, _Mapping]]] = ...) -> None: ...

class DeleteMemoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeleteMemoryResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class UploadDocumentRequest(_message.Message):
    __slots__ = ("file", "entity_type", "entity_id", "conversation_id")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    file: _options_pb2.UploadedFile
    entity_type: EntityType
    entity_id: int
    conversation_id: str
    def __init__(self, file: _Optional[_Union[_options_pb2.UploadedFile, _Mapping]] = ..., entity_type: _Optional[_Union[EntityType, str]] = ..., entity_id: _Optional[int] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "filename", "file_size", "mime_type", "entity_type", "entity_id", "uploaded_at", "sha256", "chunk_count", "conversation_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    filename: str
    file_size: int
    mime_type: str
    entity_type: EntityType
    entity_id: int
    uploaded_at: _timestamp_pb2.Timestamp
    sha256: str
    chunk_count: int
    conversation_id: int
    def __init__(self, id: _Optional[int] = ..., filename: _Optional[str] = ..., file_size: _Optional[int] = ..., mime_type: _Optional[str] = ..., entity_type: _Optional[_Union[EntityType, str]] = ..., entity_id: _Optional[int] = ..., uploaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sha256: _Optional[str] = ..., chunk_count: _Optional[int] = ..., conversation_id: _Optional[int] = ...) -> None: ...

class ListDocumentsRequest(_message.Message):
    __slots__ = ("entity_type", "entity_id", "limit", "offset")
    ENTITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    entity_type: EntityType
    entity_id: int
    limit: int
    offset: int
    def __init__(self, entity_type: _Optional[_Union[EntityType, str]] = ..., entity_id: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "total", "limit", "offset")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    total: int
    limit: int
    offset: int
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., total: _Optional[int] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("document_id",)
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: int
    def __init__(self, document_id: _Optional[int] = ...) -> None: ...

class DeleteDocumentRequest(_message.Message):
    __slots__ = ("document_id",)
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: int
    def __init__(self, document_id: _Optional[int] = ...) -> None: ...

class DeleteDocumentResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
