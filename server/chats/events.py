"""Announcing stored chat messages on the event bus, whichever route stored them.

LiveService.WatchChat streams them to the chat's watchers on every replica (FoyerGPT's
Socket.IO rooms are a framing of that stream, in the bridge).
"""

from __future__ import annotations

import logging
from typing import Protocol

from google.protobuf import json_format

from server.chats import repository
from server.chats.views import MessageView
from server.events.bus import EventBus
from server.events.topics import CHAT_MESSAGE, MessageStored
from server.storage import Database

log = logging.getLogger("relais.chats.events")


class MessageEvents(Protocol):
    async def stored(self, message: MessageView, *, owner_id: int | None = None) -> None:
        """Announce `message` to its chat's watchers (`owner_id`: the chat's owner, when known)."""


class NoMessageEvents:
    """For a ChatService used without live updates."""

    async def stored(self, message: MessageView, *, owner_id: int | None = None) -> None:
        """Nobody listens."""


class ChatEvents:
    def __init__(self, database: Database, bus: EventBus) -> None:
        self._database = database
        self._bus = bus
        # A chat's owner never changes: remembered, so a streamed reply costs one lookup.
        self._owners: dict[int, int] = {}

    async def stored(self, message: MessageView, *, owner_id: int | None = None) -> None:
        from server.chats.servicer import message_message  # the servicer imports the service, which imports this

        if owner_id is not None:
            self._remember(message.chat_id, owner_id)
        else:
            owner_id = await self._owner_of(message.chat_id)
        if owner_id is None:
            return  # deleted meanwhile: nobody may watch it any more
        fields = json_format.MessageToDict(message_message(message), preserving_proto_field_name=True)
        await self._bus.publish(CHAT_MESSAGE, MessageStored(chat_id=message.chat_id, owner_id=owner_id, message=fields))

    async def _owner_of(self, chat_id: int) -> int | None:
        owner = self._owners.get(chat_id)
        if owner is None:
            async with self._database.sessions() as session:
                owner = await repository.chat_owner(session, chat_id)
            if owner is not None:
                self._remember(chat_id, owner)
        return owner

    def _remember(self, chat_id: int, owner_id: int) -> None:
        if len(self._owners) > 10_000:
            self._owners.clear()
        self._owners[chat_id] = owner_id
