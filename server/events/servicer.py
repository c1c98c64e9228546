"""LiveService and EventService over gRPC: the bus's events as server streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from relais.v1 import chat_pb2, live_pb2, live_pb2_grpc

from server.events.bus import Envelope, now
from server.events.service import LiveEvents, visible
from server.events.topics import CHAT_MESSAGE, MessageStored, Typing
from server.interceptors.call import current_principal


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def chat_update(envelope: Envelope) -> live_pb2.WatchChatResponse:
    if envelope.topic is CHAT_MESSAGE:
        stored: MessageStored = envelope.event
        message = json_format.ParseDict(stored.message, chat_pb2.ChatMessage(), ignore_unknown_fields=True)
        return live_pb2.WatchChatResponse(new_message=message)
    typing: Typing = envelope.event
    return live_pb2.WatchChatResponse(
        user_typing=live_pb2.UserTyping(
            chat_id=typing.chat_id,
            user_id=typing.user_id,
            is_typing=typing.is_typing,
            connection_id=typing.connection_id,
        )
    )


def event_message(name: str, data: dict[str, Any], ts: float) -> live_pb2.SubscribeResponse:
    body = struct_pb2.Struct()
    body.update(data)
    return live_pb2.SubscribeResponse(event=name, data=body, ts=_timestamp(ts))


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    def __init__(self, live: LiveEvents) -> None:
        self._live = live

    async def WatchChat(
        self, request: live_pb2.WatchChatRequest, context: Any
    ) -> AsyncIterator[live_pb2.WatchChatResponse]:
        principal = current_principal()
        subscription = await self._live.watch_chat(principal, request.chat_id)
        try:
            yield live_pb2.WatchChatResponse(watching=live_pb2.Watching(chat_id=request.chat_id))
            async for envelope in visible(subscription, principal):
                yield chat_update(envelope)
        finally:
            subscription.close()

    async def SetTyping(self, request: live_pb2.SetTypingRequest, context: Any) -> live_pb2.SetTypingResponse:
        await self._live.set_typing(
            current_principal(), request.chat_id, is_typing=request.is_typing, connection_id=request.connection_id
        )
        return live_pb2.SetTypingResponse()

    async def WatchSession(
        self, request: live_pb2.WatchSessionRequest, context: Any
    ) -> AsyncIterator[live_pb2.WatchSessionResponse]:
        principal = current_principal()
        yield live_pb2.WatchSessionResponse(session_id=principal.session_id or "", user_id=principal.user_id or 0)
        # Open until the session ends (the session interceptor ends the call) or the client leaves.
        await asyncio.Event().wait()


class EventServicer(live_pb2_grpc.EventServiceServicer):
    def __init__(self, live: LiveEvents) -> None:
        self._live = live

    async def Subscribe(
        self, request: live_pb2.SubscribeRequest, context: Any
    ) -> AsyncIterator[live_pb2.SubscribeResponse]:
        principal = current_principal()
        names, subscription = self._live.subscribe(list(request.topics))
        try:
            yield event_message("subscribed", {"topics": names}, now())
            async for envelope in visible(subscription, principal):
                yield event_message(envelope.topic.name, envelope.topic.encode(envelope.event), envelope.ts)
        finally:
            subscription.close()
