"""AgentService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

from typing import Any

from relais.v1 import agent_pb2, agent_pb2_grpc

from server.agents.service import AgentFields, AgentService
from server.agents.views import AgentView
from server.convert import timestamp
from server.interceptors.call import current_call, current_principal
from server.messages import say


def agent_message(agent: AgentView) -> agent_pb2.Agent:
    message = agent_pb2.Agent(
        id=agent.id,
        name=agent.name,
        system_prompt=agent.system_prompt,
        learn_from_interaction=agent.learn_from_interaction,
        is_public=agent.is_public,
        model=agent.model,
        temperature=agent.temperature,
        owner=agent_pb2.AgentOwner(id=agent.owner_id, trigramme=agent.owner_trigramme or ""),
        owner_id=agent.owner_id,
        created_at=timestamp(agent.created_at),
        updated_at=timestamp(agent.updated_at),
    )
    if agent.avatar_url:
        message.avatar_url = agent.avatar_url
    return message


def _fields(request: Any, names: tuple[str, ...]) -> AgentFields:
    """The fields the request carries (optional fields count only when present)."""
    values = {}
    for name in names:
        field = request.DESCRIPTOR.fields_by_name[name]
        if field.has_presence and not request.HasField(name):
            continue
        values[name] = getattr(request, name)
    return AgentFields(**values)


FIELD_NAMES = ("name", "system_prompt", "learn_from_interaction", "is_public", "model", "temperature", "avatar_url")


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, agents: AgentService) -> None:
        self._agents = agents

    async def ListAgents(self, request: agent_pb2.ListAgentsRequest, context: Any) -> agent_pb2.ListAgentsResponse:
        page = await self._agents.list_public(limit=request.limit, offset=request.offset)
        return agent_pb2.ListAgentsResponse(
            agents=[agent_message(agent) for agent in page.items], **page.offset_fields()
        )

    async def ListMyAgents(self, request: agent_pb2.ListMyAgentsRequest, context: Any) -> agent_pb2.ListAgentsResponse:
        agents = await self._agents.list_mine(current_principal())
        return agent_pb2.ListAgentsResponse(
            agents=[agent_message(agent) for agent in agents], total=len(agents), limit=len(agents)
        )

    async def CreateAgent(self, request: agent_pb2.CreateAgentRequest, context: Any) -> agent_pb2.Agent:
        return agent_message(await self._agents.create(current_principal(), _fields(request, FIELD_NAMES)))

    async def GetAgent(self, request: agent_pb2.GetAgentRequest, context: Any) -> agent_pb2.Agent:
        return agent_message(await self._agents.get(current_call().principal, request.agent_id))

    async def UpdateAgent(self, request: agent_pb2.UpdateAgentRequest, context: Any) -> agent_pb2.Agent:
        fields = _fields(request, FIELD_NAMES)
        return agent_message(await self._agents.update(current_principal(), request.agent_id, fields))

    async def DeleteAgent(self, request: agent_pb2.DeleteAgentRequest, context: Any) -> agent_pb2.DeleteAgentResponse:
        await self._agents.delete(current_principal(), request.agent_id)
        return agent_pb2.DeleteAgentResponse(message=say("agent_deleted", id=request.agent_id))
