"""Building a stream of relais.v1.StreamEvent: numbered, named, and journaled as it is sent.

Every server stream uses one `EventStream`:

    stream = await EventStream.open(journal, request_id, principal)
    try:
        yield stream.emit(status=StreamStatus(...))
        yield stream.emit(token=TokenDelta(text="Bon"))
        yield stream.emit(final=FinalMessage(text="Bonjour"))
    finally:
        await stream.close(partial_text=text_so_far)

`close` ends the journaled stream; a stream that ended without `final` or `error` (the client
left) is journaled with a CANCELLED error keeping the partial text, so a replay always ends.
Text generated but not yet emitted when the client left (a token taken from the model while
the reply was being stored) is journaled first as one more token delta: the journal's deltas
always add up to the partial text that was kept.
"""

from __future__ import annotations

from typing import Any

from relais.v1 import events_pb2

from server.auth import Principal
from server.history.service import Journal, Recording

TERMINAL = ("final", "error")


class EventStream:
    def __init__(self, recording: Recording) -> None:
        self._recording = recording
        self.seq = 0
        self.ended = False
        # The text of the token deltas emitted so far.
        self._sent: list[str] = []

    @classmethod
    async def open(cls, journal: Journal, request_id: str, principal: Principal | None) -> EventStream:
        return cls(await journal.open(request_id, principal))

    @property
    def req_id(self) -> str:
        return self._recording.stream_id

    def emit(self, *, usage: events_pb2.TokenUsage | None = None, **member: Any) -> events_pb2.StreamEvent:
        """The next event, with one oneof member set (e.g. token=TokenDelta(...))."""
        event = events_pb2.StreamEvent(seq=self.seq, req_id=self.req_id, usage=usage, **member)
        self.seq += 1
        kind = event.WhichOneof("event")
        self.ended = self.ended or kind in TERMINAL
        if kind == "token":
            self._sent.append(event.token.text)
        self._recording.add(event.seq, event.SerializeToString())
        return event

    def link_message(self, message_id: int) -> None:
        self._recording.link_message(message_id)

    async def close(
        self, *, partial_text: str = "", message_id: int = 0, stored: events_pb2.FinalMessage | None = None
    ) -> None:
        """End the journaled stream. `stored`: the reply was stored whole although its `final` was
        not sent (the client left while it was being stored): the journal ends as it was stored."""
        if not self.ended:
            sent = "".join(self._sent)
            text = stored.text if stored is not None else partial_text
            if len(text) > len(sent) and text.startswith(sent):
                self.emit(token=events_pb2.TokenDelta(text=text[len(sent) :], message_id=message_id))
            if stored is not None:
                self.emit(final=stored)
            else:
                error = events_pb2.StreamError(
                    code="CANCELLED", message="The client left", partial_text=partial_text, message_id=message_id
                )
                self.emit(error=error)
        await self._recording.end()
