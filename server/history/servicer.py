"""HistoryService over gRPC: replaying the caller's journaled streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from relais.v1 import events_pb2, history_pb2, history_pb2_grpc

from server.errors import FieldViolation, ValidationFailed
from server.history.service import Journal, StreamInterrupted
from server.interceptors.call import current_principal


class HistoryServicer(history_pb2_grpc.HistoryServiceServicer):
    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def Replay(self, request: history_pb2.ReplayRequest, context: Any) -> AsyncIterator[events_pb2.StreamEvent]:
        if request.from_seq < 0:
            raise ValidationFailed([FieldViolation(field="from_seq", message="Must be 0 or more")])
        if not request.req_id and request.message_id <= 0:
            raise ValidationFailed([FieldViolation(field="req_id", message="Give req_id or message_id")])
        principal = current_principal()
        stream_id = await self._journal.resolve(principal, req_id=request.req_id, message_id=request.message_id)
        if stream_id is None:
            # Journal expired: the stored reply, whole, as the stream's end.
            assert self._journal.stored_reply is not None
            stored = await self._journal.stored_reply(principal, request.message_id)
            assert stored is not None
            text, model, chat_id = stored
            final = events_pb2.FinalMessage(text=text, model=model, message_id=request.message_id, chat_id=chat_id)
            yield events_pb2.StreamEvent(final=final)
            return
        next_seq = request.from_seq
        try:
            async for entry in self._journal.events(stream_id, request.from_seq):
                next_seq = entry.seq + 1
                yield events_pb2.StreamEvent.FromString(entry.data)
        except StreamInterrupted:
            # Its replica died mid-stream: end it as streams end, with a terminal event (what was
            # stored of a chat reply stays "incomplete").
            gone = events_pb2.StreamError(
                code="UNAVAILABLE", message="The server generating this stream stopped before its end"
            )
            yield events_pb2.StreamEvent(seq=next_seq, req_id=stream_id, error=gone)
