"""The chats domain as the server assembles it: the service, its servicers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relais.v1 import chat_pb2, chat_pb2_grpc

from server.agent.loop import AgentLoop
from server.chats.events import ChatEvents
from server.chats.service import ChatService
from server.chats.servicer import ChatServicer, ConversationServicer, MessageServicer
from server.events import EventBus
from server.history.service import Journal
from server.inference.domain import InferenceDomain
from server.registration import ServiceRegistration, register
from server.retrieval.service import KnowledgeBase
from server.storage import Database


@dataclass(frozen=True, slots=True)
class ChatsDomain:
    service: ChatService
    journal: Journal

    def registrations(self) -> list[ServiceRegistration]:
        chats, journal = self.service, self.journal
        return [
            register(chat_pb2, chat_pb2_grpc, "ChatService", ChatServicer(chats)),
            register(chat_pb2, chat_pb2_grpc, "MessageService", MessageServicer(chats, journal)),
            register(chat_pb2, chat_pb2_grpc, "ConversationService", ConversationServicer(chats, journal)),
        ]


def start_chats(
    database: Database,
    inference: InferenceDomain,
    *,
    knowledge: KnowledgeBase,
    loop: AgentLoop,
    bus: EventBus,
    journal: Journal,
    tools_count: Callable[[], Awaitable[int]],
) -> ChatsDomain:
    """Conversations whose replies the agent `loop` writes, announced on `bus` as they are stored,
    and replayed from `journal` (which asks them for a stored reply)."""
    service = ChatService(
        database, inference.service, inference.catalogue, ChatEvents(database, bus), knowledge=knowledge, agent=loop
    )
    service.tools_count = tools_count
    journal.stored_reply = service.stored_reply
    return ChatsDomain(service, journal)
