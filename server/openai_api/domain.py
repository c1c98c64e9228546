"""The OpenAI API as the server assembles it, from the domains it serves."""

from __future__ import annotations

from dataclasses import dataclass

from relais.v1 import openai_pb2, openai_pb2_grpc

from server.agent.loop import AgentLoop
from server.agents.service import AgentService
from server.chats.events import MessageEvents
from server.chats.service import ChatService
from server.config import Settings
from server.history.service import Journal
from server.inference.service import InferenceService
from server.openai_api.chat import ChatCompletions
from server.openai_api.embeddings import LOCAL_MODEL_NAME, Embeddings
from server.openai_api.repository import UsageRepository
from server.openai_api.service import OpenAIService
from server.openai_api.servicer import OpenAIServicer
from server.registration import ServiceRegistration, register
from server.retrieval.domain import RetrievalDomain
from server.storage import Database


@dataclass(frozen=True, slots=True)
class OpenAIDomain:
    service: OpenAIService
    registration: ServiceRegistration

    async def close(self) -> None:
        """Write the usage counts still held."""
        await self.service.counter.close()


def start_openai(
    settings: Settings,
    database: Database,
    *,
    inference: InferenceService,
    retrieval: RetrievalDomain,
    loop: AgentLoop,
    agents: AgentService,
    chats: ChatService,
    events: MessageEvents,
    journal: Journal,
) -> OpenAIDomain:
    """relais.v1.OpenAIService over the same inference, agent loop, agents, chats and embedder
    as every other route."""
    embedding_model = LOCAL_MODEL_NAME if settings.embedding_backend == "local" else settings.embedding_model
    chat = ChatCompletions(
        database=database,
        inference=inference,
        loop=loop,
        agents=agents,
        chats=chats,
        events=events,
        knowledge=retrieval.knowledge,
        embedding_model=embedding_model,
    )
    service = OpenAIService(
        inference=inference,
        chat=chat,
        agents=agents,
        embeddings=Embeddings(retrieval.embedder, embedding_model),
        usage=UsageRepository(database),
    )
    registration = register(openai_pb2, openai_pb2_grpc, "OpenAIService", OpenAIServicer(service, journal))
    return OpenAIDomain(service, registration)
