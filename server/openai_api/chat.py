"""POST /v1/chat/completions through the agent loop, as domain events (server/agent/events.py).

    model → Target (a model key; or an agent: its prompt, model, temperature, knowledge)
    tools → the client's function tools (their calls end the reply, for the client to run) and
            the Relais tools named in `relais_tools` (run here, with the caller's permissions)
    the conversation the client sent (no history is read from the database)
          → the agent loop → Started, text, tool calls…, Finished

Everything is checked before anything is kept. Nothing is kept unless the request names a
conversation (or asks for a new one): then its last user message and the reply are stored there
as /api/chat stores them, and the reply's `conversation_id` says where.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from server.agent.events import Finished, ReplyEvent, Started
from server.agent.loop import AgentLoop, AgentRequest, AgentRun, tool_specs
from server.agents.service import AgentService
from server.agents.views import AgentView
from server.auth import Principal
from server.chats.events import MessageEvents
from server.chats.replies import ReplyRecorder
from server.chats.service import ChatService, learning, with_passages
from server.errors import NotFound
from server.inference.backend import GenerationRequest, Role, Turn
from server.inference.catalogue import ServedModel
from server.inference.config import ROUTER_KEY
from server.inference.service import InferenceService
from server.openai_api.requests import CHOICES, invalid
from server.openai_api.values import AGENT_PREFIX, NEW_CONVERSATION, NOT_STORED, ChatRequest, ModelNotFound
from server.storage import Database
from server.tools.registry import CallerContext, RegisteredTool

if TYPE_CHECKING:
    from server.retrieval.service import Found, KnowledgeBase


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What answers: a model key and, for an agent, its instructions and knowledge."""

    model_key: str
    system_prompt: str = ""
    temperature: float | None = None
    agent_id: int | None = None
    learns: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Kept:
    """Where a stored exchange goes, once its question is stored."""

    chat_id: int
    user_message_id: int
    recorder: ReplyRecorder


def last_user_text(turns: tuple[Turn, ...]) -> str:
    return next((turn.content for turn in reversed(turns) if turn.role is Role.USER), "")


class ChatCompletions:
    def __init__(
        self,
        *,
        database: Database,
        inference: InferenceService,
        loop: AgentLoop,
        agents: AgentService,
        chats: ChatService,
        events: MessageEvents,
        knowledge: KnowledgeBase | None,
        embedding_model: str,
    ) -> None:
        self._database = database
        self._inference = inference
        self._loop = loop
        self._agents = agents
        self._chats = chats
        self._events = events
        self._knowledge = knowledge
        self._embedding_model = embedding_model

    async def reply(
        self, principal: Principal, request: ChatRequest, *, request_id: str
    ) -> AsyncGenerator[ReplyEvent, None]:
        """Started, the loop's events, Finished; raises before Started when the reply cannot start."""
        target = await self.target(principal, request.model)
        relais = self._relais_tools(principal, request)
        draft = self._draft(principal, request, target, relais, request_id=request_id)
        self._inference.resolve(draft, target.model_key)  # the model can serve this request (tools…)
        chat_id = await self._conversation(principal, request.conversation)
        found = await self._passages(principal, target, request, chat_id)
        system = with_passages(target.system_prompt, found)
        generation = replace(draft, turns=((Turn(Role.SYSTEM, system),) if system.strip() else ()) + request.turns)
        served = self._inference.resolve(generation, target.model_key)
        caller = CallerContext(principal=principal, request_id=request_id)
        agent_request = AgentRequest(
            generation=generation, model=served, tools=relais, caller=caller, client_tools=request.client_tools
        )
        kept = await self._keep(principal, request, target, served, chat_id, found)
        try:
            run = await self._loop.start(agent_request)
        except Exception:
            if kept is not None:
                await kept.recorder.failed_to_start()
            raise
        yield Started(
            model=served.key,
            backend=served.backend.kind,
            chat_id=kept.chat_id if kept else 0,
            user_message_id=kept.user_message_id if kept else 0,
            usage=run.usage,
        )
        events = kept.recorder.record(run) if kept is not None else unrecorded(run)
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                yield event

    async def target(self, principal: Principal, model: str) -> Target:
        """The model key (404 `model_not_found` for anything /v1/models does not list)."""
        if not model:
            raise invalid("model", "is required: a model id of GET /v1/models")
        if model.startswith(AGENT_PREFIX):
            agent = await self.agent(principal, model)
            catalogue = self._inference.catalogue
            return Target(
                # An agent may name a model this deployment does not serve: the router then chooses.
                model_key=agent.model if agent.model in catalogue.keys else ROUTER_KEY,
                system_prompt=agent.system_prompt,
                temperature=agent.temperature,
                agent_id=agent.id,
                learns=agent.learn_from_interaction,
            )
        if model in self._inference.catalogue.keys:
            return Target(model_key=model)
        if model == self._embedding_model:
            raise ModelNotFound(f"{model!r} is an embedding model: use POST /v1/embeddings")
        raise ModelNotFound(f"The model {model!r} does not exist; GET /v1/models lists the models")

    async def agent(self, principal: Principal | None, model: str) -> AgentView:
        """The agent `agent:<id>` names, if the caller may use it (theirs, or public)."""
        number = model.removeprefix(AGENT_PREFIX)
        try:
            if not number.isdigit():
                raise NotFound(model)
            return await self._agents.get(principal, int(number))
        except NotFound:
            raise ModelNotFound(f"The model {model!r} does not exist, or you may not use it") from None

    def _relais_tools(self, principal: Principal, request: ChatRequest) -> tuple[RegisteredTool, ...]:
        registry = self._loop.registry
        if request.relais_tools and registry is None:
            raise invalid("relais_tools", "names tools, but this server has none")
        tools = tuple(registry.get(principal, name) for name in request.relais_tools) if registry else ()
        clients = {tool.name for tool in request.client_tools}
        if clashing := sorted(clients & {tool.name for tool in tools}):
            raise invalid("tools", f"{clashing[0]!r} is also one of relais_tools; rename the function")
        return tools

    def _draft(
        self, principal: Principal, request: ChatRequest, target: Target, relais: tuple[RegisteredTool, ...], **ids: str
    ) -> GenerationRequest:
        """The first step's request, before the agent's knowledge is added."""
        choice = _choice(request, relais)
        sampling = request.sampling
        return GenerationRequest(
            request_id=ids["request_id"],
            turns=((Turn(Role.SYSTEM, target.system_prompt),) if target.system_prompt.strip() else ()) + request.turns,
            max_tokens=self._inference.max_tokens(sampling.max_tokens),
            temperature=sampling.temperature if sampling.temperature is not None else target.temperature,
            top_p=sampling.top_p,
            stop=sampling.stop,
            seed=sampling.seed,
            caller=principal.subject,
            tools=(*tool_specs(relais), *request.client_tools) if choice != "none" else (),
            tool_choice=choice,
            json_format=request.json_format,
            via=request.via,
        )

    async def _conversation(self, principal: Principal, conversation: str) -> int | None:
        """The id of the caller's conversation the request names (404 for any other); None for
        none or a new one."""
        if conversation in (NOT_STORED, NEW_CONVERSATION):
            return None
        if not conversation.isdigit():
            raise NotFound(f"No conversation {conversation!r}")
        return (await self._chats.get(principal, int(conversation))).id

    async def _passages(
        self, principal: Principal, target: Target, request: ChatRequest, chat_id: int | None
    ) -> list[Found]:
        """An agent's knowledge for the last user message (its documents, the conversation's,
        its memory of this user), as /api/chat gives it."""
        query = last_user_text(request.turns)
        if target.agent_id is None or self._knowledge is None or principal.user_id is None or not query.strip():
            return []
        return await self._knowledge.for_reply(
            principal, chat_id=chat_id or 0, agent_id=target.agent_id, file_sources=[], query=query
        )

    async def _keep(
        self,
        principal: Principal,
        request: ChatRequest,
        target: Target,
        served: ServedModel,
        chat_id: int | None,
        found: list[Found],
    ) -> Kept | None:
        """Store the last user message in the named (or a new) conversation; the reply's recorder."""
        if request.conversation == NOT_STORED:
            return None
        if chat_id is None:
            chat_id = (await self._chats.create(principal, agent_id=target.agent_id, title="")).id
        question = request.turns[-1].content if request.turns[-1].role is Role.USER else ""
        user_message_id = await self._chats.store_question(chat_id, question) if question else 0
        learner = target.agent_id if target.learns else None
        learn = learning(self._knowledge, principal, learner, question, chat_id) if question else None
        sources = [passage.as_json() for passage in found]
        recorder = ReplyRecorder(self._database, chat_id, served.key, self._events, sources=sources, on_complete=learn)
        return Kept(chat_id=chat_id, user_message_id=user_message_id, recorder=recorder)


def _choice(request: ChatRequest, relais: tuple[RegisteredTool, ...]) -> str:
    """The first step's tool_choice: auto by default with tools, none without."""
    names = {tool.name for tool in relais} | {tool.name for tool in request.client_tools}
    choice = request.tool_choice
    if not names:
        if choice in ("", "none", "auto"):
            return "none"
        raise invalid("tool_choice", "asks for a tool call, but no tools are offered")
    if not choice:
        return "auto"
    if choice not in CHOICES and choice not in names:
        raise invalid("tool_choice", f"names no offered tool; tools: {', '.join(sorted(names))}")
    return choice


async def unrecorded(run: AgentRun) -> AsyncGenerator[ReplyEvent, None]:
    """The run's events, then Finished, for an exchange nothing keeps."""
    async with contextlib.aclosing(run.events()) as events:
        async for event in events:
            yield event
    yield Finished(
        text=run.text, finish=run.finish, model=run.model.key, tools_used=tuple(run.tools_used), usage=run.usage
    )
