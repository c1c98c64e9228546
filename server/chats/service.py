"""Conversations: ownership, listing, and sending a message with its recorded reply."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.agent.events import Finished, ReplyEvent, Started
from server.agent.loop import AgentLimits, AgentLoop, AgentRequest, tool_specs
from server.agents.access import may_use, owned_count, usable_agent
from server.auth import Principal
from server.chats import repository
from server.chats.events import MessageEvents, NoMessageEvents
from server.chats.history import fit
from server.chats.models import Chat, Message
from server.chats.replies import ReplyOptions, ReplyRecorder, history_turns, offered_tools, reply_row
from server.chats.views import ChatView, MessageView
from server.errors import FieldViolation, NotFound, PermissionDenied, ValidationFailed
from server.inference.backend import GenerationRequest, Role, Turn
from server.inference.catalogue import Catalogue
from server.inference.config import ROUTER_KEY
from server.inference.service import InferenceService
from server.paging import Page, page_window
from server.storage import Database
from server.storage.queries import page_of
from server.tools.registry import CallerContext, RegisteredTool

if TYPE_CHECKING:
    from server.retrieval.service import Found, KnowledgeBase

log = logging.getLogger("relais.chats")

MAX_CONTENT = 4000
MAX_TITLE = 200
TITLE_FROM_MESSAGE = 60
DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True, slots=True)
class Exchange:
    user_message: MessageView
    assistant_message: MessageView


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """What a reply needs from the conversation."""

    history: list[MessageView]
    system_prompt: str
    temperature: float | None
    model_key: str
    learning_agent: int | None


@dataclass(frozen=True, slots=True)
class PreparedReply:
    user_message: MessageView
    request: AgentRequest
    recorder: ReplyRecorder


def title_from(content: str) -> str:
    """A title from the first user message: its first line, cut at a word boundary."""
    line = " ".join(content.strip().split("\n", 1)[0].split())
    if len(line) <= TITLE_FROM_MESSAGE:
        return line or "New chat"
    cut = line[:TITLE_FROM_MESSAGE].rsplit(" ", 1)[0] or line[:TITLE_FROM_MESSAGE]
    return cut + "…"


def _excerpt(content: str, query: str, width: int = 240) -> str:
    """The part of `content` around the first occurrence of `query`."""
    at = max(0, content.lower().find(query.lower()))
    start = max(0, at - width // 2)
    excerpt = content[start : start + width]
    return ("…" if start else "") + excerpt + ("…" if start + width < len(content) else "")


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Conversations belong to user accounts; sign in as a user")
    return principal.user_id


def ensure_agent_readable(chat: Chat | ChatView) -> None:
    """A chat whose agent was made private since gets no more replies from it: access to an
    agent is checked at every reply, not only when the chat was created (a row inside a
    transaction, a view after it)."""
    if chat.agent is not None and not may_use(chat.agent, chat.owner_id):
        raise PermissionDenied("This chat's agent is no longer available to you (its owner made it private)")


def with_passages(system_prompt: str, found: list[Found]) -> str:
    """The system prompt followed by the retrieved passages, numbered so the reply can cite them."""
    if not found:
        return system_prompt
    excerpts = "\n\n".join(f"[{index}] {passage.path}:\n{passage.text}" for index, passage in enumerate(found, 1))
    lead = "Excerpts from the documents and memory available to this conversation (cite them as [n]):"
    return f"{system_prompt}\n\n{lead}\n\n{excerpts}".strip()


async def add_question(
    session: AsyncSession, chat: Chat | None, chat_id: int, content: str, *, reply: Message | None = None
) -> MessageView:
    """A user message added to a conversation (counted by the database, as a reply is), titling it
    if it has no title yet; `reply`: its reply's row, stored with it."""
    message = Message(chat_id=chat_id, role="user", content=content, status="complete")
    await repository.add_messages(session, message, *([reply] if reply is not None else []))
    if chat is not None and not chat.title:
        chat.title = title_from(content)
    return MessageView.of(message)


def learning(
    knowledge: KnowledgeBase | None, principal: Principal, agent_id: int | None, question: str, chat_id: int
) -> Callable[[MessageView], Awaitable[None]] | None:
    """For an agent that learns from interactions (`agent_id`, None for none): keep each complete
    exchange in its memory."""
    if agent_id is None or knowledge is None:
        return None

    async def learn(reply: MessageView) -> None:
        await knowledge.learn(principal, agent_id, question=question, answer=reply.content, chat_id=chat_id)

    return learn


class ChatService:
    def __init__(
        self,
        database: Database,
        inference: InferenceService,
        catalogue: Catalogue,
        events: MessageEvents | None = None,
        *,
        knowledge: KnowledgeBase | None = None,
        agent: AgentLoop | None = None,
    ) -> None:
        self._database = database
        # The agent loop writes every reply; its registry decides which tools a caller may offer.
        self._agent = agent or AgentLoop(inference, None, AgentLimits())
        self._tools = self._agent.registry
        self._events = events or NoMessageEvents()
        self._knowledge = knowledge
        self._inference = inference
        self._catalogue = catalogue
        self._started = time.monotonic()
        # How many tools agents may call (the system's tool registry, when there is one).
        self.tools_count: Callable[[], Awaitable[int]] | None = None

    # ------------------------------------------------------------------ conversations

    async def list_chats(self, principal: Principal, *, limit: int, offset: int, search: str = "") -> Page[ChatView]:
        offset, limit = page_window(skip=0, offset=offset, limit=limit)
        statement = repository.chats(_user_id(principal), search=search.strip())
        async with self._database.sessions() as session:
            return (await page_of(session, statement, skip=offset, limit=limit)).map(ChatView.of)

    async def search_messages(self, principal: Principal, query: str, *, limit: int) -> list[dict[str, Any]]:
        """The caller's messages containing `query` (case-insensitive), newest first, with their
        conversation (the search_conversations tool)."""
        owner = _user_id(principal)
        text = query.strip()
        if not text:
            raise ValidationFailed([FieldViolation(field="query", message="is required")])
        async with self._database.sessions() as session:
            rows = await repository.matching_messages(session, owner, text, limit=max(1, min(limit, 20)))
        return [
            {
                "conversation_id": message.chat_id,
                "conversation_title": title,
                "message_id": message.id,
                "role": message.role,
                "excerpt": _excerpt(message.content, text),
                "created_at": message.created_at,
            }
            for message, title in rows
        ]

    async def create(self, principal: Principal, *, agent_id: int | None, title: str) -> ChatView:
        owner = _user_id(principal)
        title = title.strip()
        if len(title) > MAX_TITLE:
            raise ValidationFailed([FieldViolation(field="title", message=f"must be at most {MAX_TITLE} characters")])
        async with self._database.sessions() as session, session.begin():
            if agent_id is not None and await usable_agent(session, agent_id, owner) is None:
                raise NotFound(f"No agent {agent_id}")
            chat = Chat(owner_id=owner, agent_id=agent_id, title=title)
            session.add(chat)
        return await self.get(principal, chat.id)

    async def get(self, principal: Principal, chat_id: int) -> ChatView:
        async with self._database.sessions() as session:
            return ChatView.of(await self._owned(session, principal, chat_id))

    async def messages(self, principal: Principal, chat_id: int) -> list[MessageView]:
        async with self._database.sessions() as session:
            await self._owned(session, principal, chat_id)
            return [MessageView.of(message) for message in await repository.messages(session, chat_id)]

    async def stored_reply(self, principal: Principal, message_id: int) -> tuple[str, str, int] | None:
        """The caller's stored assistant message: its text, model and chat; None if not theirs."""
        async with self._database.sessions() as session:
            message = await repository.get_message(session, message_id)
            if message is None or message.role != "assistant":
                return None
            try:
                await self._owned(session, principal, message.chat_id)
            except NotFound:
                return None
            return message.content, message.llm_model or "", message.chat_id

    async def store_question(self, chat_id: int, content: str) -> int:
        """Store a user message in the conversation `chat_id` (one its caller may write to) and
        announce it; its id."""
        async with self._database.sessions() as session, session.begin():
            message = await add_question(session, await repository.get_chat(session, chat_id), chat_id, content)
        await self._events.stored(message)
        return message.id

    async def completed_reply(self, message_id: int) -> MessageView | None:
        """The assistant message `message_id` if it was stored whole (status complete)."""
        async with self._database.sessions() as session:
            message = await repository.get_message(session, message_id)
            return MessageView.of(message) if message is not None and message.status == "complete" else None

    async def update_chat(self, principal: Principal, chat_id: int, title: str) -> ChatView:
        title = title.strip()
        if not title or len(title) > MAX_TITLE:
            message = "is required" if not title else f"must be at most {MAX_TITLE} characters"
            raise ValidationFailed([FieldViolation(field="title", message=message)])
        async with self._database.sessions() as session, session.begin():
            chat = await self._owned(session, principal, chat_id)
            chat.title = title
        return await self.get(principal, chat_id)

    async def delete(self, principal: Principal, chat_id: int) -> None:
        if self._knowledge is not None:
            await self.get(principal, chat_id)
            # Its documents first: their files and passages are not rows a cascade could remove.
            await self._knowledge.forget_entity("chat", chat_id)
        async with self._database.sessions() as session, session.begin():
            await session.delete(await self._owned(session, principal, chat_id))

    @staticmethod
    async def _owned(session: AsyncSession, principal: Principal, chat_id: int) -> Chat:
        chat = await repository.get_chat(session, chat_id)
        # Someone else's conversation does not exist, as far as the caller can tell.
        if chat is None or chat.owner_id != _user_id(principal):
            raise NotFound(f"No chat {chat_id}")
        return chat

    @staticmethod
    def check_content(content: str, field: str = "content") -> None:
        if not content.strip():
            raise ValidationFailed([FieldViolation(field=field, message="is required")])
        if len(content) > MAX_CONTENT:
            raise ValidationFailed([FieldViolation(field=field, message=f"must be at most {MAX_CONTENT} characters")])

    def check_request(
        self, principal: Principal, content: str, options: ReplyOptions
    ) -> tuple[tuple[RegisteredTool, ...], str]:
        """What `reply` checks before storing anything (also for callers that store something
        first); the tools the reply may call and its tool_choice."""
        self.check_content(content, options.content_field)
        if options.files and self._knowledge is None:
            raise NotFound(f"No document {options.files[0]}")
        if options.model:
            self.check_model(options.model)
        return offered_tools(self._tools, principal, options.tools, options.tool_choice)

    def check_model(self, model: str) -> None:
        """A model the caller names must exist: 400 with the valid keys, before anything is stored."""
        self._catalogue.resolve(model, prompt_chars=0, max_tokens=1)

    async def stats(self, principal: Principal) -> dict[str, int | str]:
        """The caller's activity, counted now, and the system's facts (all an anonymous caller gets)."""
        uptime = int(time.monotonic() - self._started)
        system: dict[str, int | str] = {
            "models": len(self._catalogue.keys),
            "models_available": len(self._catalogue.keys),
            "uptime_seconds": uptime,
            "uptime": f"{uptime // 86400}d {uptime % 86400 // 3600}h {uptime % 3600 // 60}m",
            "tools_count": await self.tools_count() if self.tools_count else 0,
        }
        if principal.user_id is None:
            return system
        return {**system, **await self._activity(principal)}

    async def _activity(self, principal: Principal) -> dict[str, int]:
        owner = _user_id(principal)
        async with self._database.sessions() as session:
            counted = await repository.activity(session, owner)
            agents = await owned_count(session, owner)
        return {
            **counted,
            "agents": agents,
            "memory_entries": await self._knowledge.memory_count(principal) if self._knowledge else 0,
        }

    # ------------------------------------------------------------------ messages

    async def reply(
        self, principal: Principal, chat_id: int, content: str, *, request_id: str, options: ReplyOptions
    ) -> AsyncGenerator[ReplyEvent, None]:
        """Store the user's message and write the reply with the agent loop: `Started`, then the
        loop's events (text, tool calls and results), then `Finished`. Raises before the first
        event when the reply cannot start (bad request, unknown model or tool, the model down:
        the user message is then kept with an empty "error" reply)."""
        prepared = await self._prepare(principal, chat_id, content, request_id=request_id, options=options)
        recorder = prepared.recorder
        try:
            run = await self._agent.start(prepared.request)
        except Exception:
            await recorder.failed_to_start()
            raise
        yield Started(
            model=run.model.key,
            backend=run.model.backend.kind,
            chat_id=chat_id,
            user_message_id=prepared.user_message.id,
            usage=run.usage,
        )
        # Closed explicitly: a client that leaves must reach the recorder and the loop at once.
        async with contextlib.aclosing(recorder.record(run)) as events:
            async for event in events:
                yield event

    async def send(
        self, principal: Principal, chat_id: int, content: str, *, request_id: str, options: ReplyOptions
    ) -> Exchange:
        """The whole exchange at once (FoyerGPT's POST /api/messages)."""
        user_message_id = 0
        finished: Finished | None = None
        replies = self.reply(principal, chat_id, content, request_id=request_id, options=options)
        async with contextlib.aclosing(replies):
            async for event in replies:
                if isinstance(event, Started):
                    user_message_id = event.user_message_id
                elif isinstance(event, Finished):
                    finished = event
        assert finished is not None
        async with self._database.sessions() as session:
            user_message = await repository.get_message(session, user_message_id)
            assistant_message = (
                await repository.get_message(session, finished.message_id) if finished.message_id else None
            )
            assert user_message is not None
            reply = MessageView.of(assistant_message) if assistant_message else MessageView.empty_reply(chat_id)
            return Exchange(MessageView.of(user_message), reply)

    async def _prepare(
        self, principal: Principal, chat_id: int, content: str, *, request_id: str, options: ReplyOptions
    ) -> PreparedReply:
        """Everything checked before anything is stored; then, in one transaction, the user
        message and the reply's row (empty, "incomplete"), so that the first token goes out
        without a write of its own. The model is resolved once for the whole reply."""
        tools, choice = self.check_request(principal, content, options)
        caller = CallerContext(principal=principal, request_id=request_id)
        async with self._database.sessions() as session, session.begin():
            chat = await self._owned(session, principal, chat_id)
            ensure_agent_readable(chat)
            # Read before anything is written: if retrieval fails, the request fails whole.
            found = await self._passages(principal, chat, content, options.files)
            question = await self._question(session, chat, found, model=options.model)
            request = self._agent_request(question, content, tools, choice, caller)
            sources = [passage.as_json() for passage in found]
            # Empty and "incomplete" until its first token (a history reads only complete messages).
            reply = reply_row(chat_id, request.model.key, sources, status="incomplete")
            user_message = await add_question(session, chat, chat_id, content, reply=reply)
        await self._events.stored(user_message, owner_id=chat.owner_id)
        recorder = ReplyRecorder(
            self._database,
            chat_id,
            request.model.key,
            self._events,
            sources=sources,
            on_complete=learning(self._knowledge, principal, question.learning_agent, content, chat_id),
            message=MessageView.of(reply),
        )
        return PreparedReply(user_message=user_message, request=request, recorder=recorder)

    def _agent_request(
        self,
        question: Question,
        content: str,
        tools: tuple[RegisteredTool, ...],
        choice: str,
        caller: CallerContext,
    ) -> AgentRequest:
        """The reply's first model step, its history trimmed to the resolved model's window."""
        turns = [*history_turns(question.history), Turn(Role.USER, content)]
        max_tokens = self._inference.max_tokens(None)
        draft = GenerationRequest(
            request_id=caller.request_id,
            turns=(Turn(Role.SYSTEM, question.system_prompt), *turns),
            max_tokens=max_tokens,
            tools=tool_specs(tools),
            tool_choice=choice,
        )
        served = self._inference.resolve(draft, question.model_key)
        window = served.config.context_window
        generation = replace(
            draft,
            turns=fit(question.system_prompt, turns, context_window=window, reply_tokens=max_tokens),
            temperature=question.temperature,
            caller=caller.principal.subject,
        )
        return AgentRequest(generation=generation, model=served, tools=tools, caller=caller)

    async def _passages(self, principal: Principal, chat: Chat, content: str, files: tuple[int, ...]) -> list[Found]:
        """The passages the reply is given."""
        if self._knowledge is None:
            return []
        file_sources = await self._knowledge.check_files(principal, list(files))
        return await self._knowledge.for_reply(
            principal, chat_id=chat.id, agent_id=chat.agent_id, file_sources=file_sources, query=content
        )

    async def _question(self, session: AsyncSession, chat: Chat, found: list[Found], *, model: str) -> Question:
        """What the reply needs from the conversation: its history, the agent's prompt and model."""
        history = [MessageView.of(row) for row in await repository.messages(session, chat.id, complete_only=True)]
        agent = chat.agent
        # An agent may name a model (or alias) this deployment no longer serves: the router then chooses.
        wanted = model or (agent.model if agent else ROUTER_KEY)
        return Question(
            history=history,
            system_prompt=with_passages(agent.system_prompt if agent else "", found),
            temperature=agent.temperature if agent else DEFAULT_TEMPERATURE,
            model_key=self._catalogue.canonical(wanted) or ROUTER_KEY,
            learning_agent=agent.id if agent is not None and agent.learn_from_interaction else None,
        )
