"""The agents domain as the server assembles it: the service, its servicer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relais.v1 import agent_pb2, agent_pb2_grpc

from server.agents.service import AgentService
from server.agents.servicer import AgentServicer
from server.registration import ServiceRegistration, register
from server.retrieval.service import KnowledgeBase
from server.storage import Database


@dataclass(frozen=True, slots=True)
class AgentsDomain:
    service: AgentService

    def registrations(self) -> list[ServiceRegistration]:
        return [register(agent_pb2, agent_pb2_grpc, "AgentService", AgentServicer(self.service))]


def start_agents(database: Database, knowledge: KnowledgeBase, *, model_keys: Callable[[], list[str]]) -> AgentsDomain:
    """Agents whose model must be one of `model_keys()` (the keys served now), and whose
    documents and memories go with them."""
    return AgentsDomain(AgentService(database, knowledge, model_keys=model_keys))
