"""Telling Socket.IO rooms that a message was stored, whichever route stored it.

The bridge runs the Socket.IO server; messages are stored here, in the gRPC server. With
Redis configured, stored messages are published through python-socketio's Redis manager,
which every bridge process listens to (a client connected to one process hears messages
stored by another). Without Redis, the Socket.IO servers of this process are told directly:
that covers `relais serve`, where both halves share the process.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Protocol

import socketio

from server.chats.models import Message

log = logging.getLogger("relais.chats.events")

# The Redis channel python-socketio's managers share.
CHANNEL = "relais-socketio"
EVENT = "new_message"


def room_of(chat_id: int) -> str:
    return f"chat:{chat_id}"


def payload(message: Message) -> dict[str, Any]:
    """The message as the REST routes show it."""
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "llm_model": message.llm_model,
        "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
        "created_at": message.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if message.created_at else None,
    }


class MessageEvents(Protocol):
    async def stored(self, message: Message) -> None: ...

    async def close(self) -> None: ...


_LOCAL_SERVERS: weakref.WeakSet[socketio.AsyncServer] = weakref.WeakSet()


def serve_locally(server: socketio.AsyncServer) -> None:
    """Called by the bridge: this Socket.IO server hears messages stored in this process."""
    _LOCAL_SERVERS.add(server)


class LocalRooms:
    async def stored(self, message: Message) -> None:
        for server in list(_LOCAL_SERVERS):
            try:
                await server.emit(EVENT, payload(message), room=room_of(message.chat_id))
            except Exception:
                log.warning("could not tell room %s about message %s", room_of(message.chat_id), message.id)

    async def close(self) -> None:
        """Nothing to release."""


class RedisRooms:
    def __init__(self, url: str) -> None:
        self._manager = socketio.AsyncRedisManager(url, channel=CHANNEL, write_only=True)

    async def stored(self, message: Message) -> None:
        try:
            await self._manager.emit(EVENT, payload(message), room=room_of(message.chat_id))
        except Exception:
            # The message is stored; only the live notification is lost.
            log.warning("could not publish message %s through Redis", message.id, exc_info=True)

    async def close(self) -> None:
        redis = getattr(self._manager, "redis", None)
        if redis is not None:
            await redis.aclose()
