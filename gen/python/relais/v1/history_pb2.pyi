from google.api import annotations_pb2 as _annotations_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from relais.v1 import events_pb2 as _events_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ReplayRequest(_message.Message):
    __slots__ = ("req_id", "message_id", "from_seq")
    REQ_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    req_id: str
    message_id: int
    from_seq: int
    def __init__(self, req_id: _Optional[str] = ..., message_id: _Optional[int] = ..., from_seq: _Optional[int] = ...) -> None: ...
