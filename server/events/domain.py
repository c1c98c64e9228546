"""The live-updates domain as the server assembles it: the event bus, the session watch, the servicers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relais.v1 import live_pb2, live_pb2_grpc

from server.chats.service import ChatService
from server.config import Settings
from server.events import EventBus, create_bus
from server.events.service import LiveEvents
from server.events.servicer import EventServicer, LiveServicer
from server.events.sessions import SessionWatch
from server.registration import ServiceRegistration, register


@dataclass(frozen=True, slots=True)
class EventsDomain:
    bus: EventBus
    # Ends the live calls of a session that ends.
    sessions: SessionWatch

    def registrations(self, chats: ChatService) -> list[ServiceRegistration]:
        live = LiveEvents(self.bus, chats)
        return [
            register(live_pb2, live_pb2_grpc, "LiveService", LiveServicer(live)),
            register(live_pb2, live_pb2_grpc, "EventService", EventServicer(live)),
        ]

    async def close(self) -> None:
        await asyncio.gather(self.sessions.close(), self.bus.close())


async def start_events(settings: Settings) -> EventsDomain:
    """The bus (across replicas when Redis is configured), listening from now on."""
    bus = create_bus(settings.redis_url, channel_prefix=settings.events_channel_prefix)
    sessions = SessionWatch(bus)
    await bus.start()
    await sessions.start()
    return EventsDomain(bus, sessions)
