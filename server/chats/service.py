"""Conversations: ownership, listing, and sending a message with its recorded reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select

from server.agents.models import Agent
from server.auth import Principal
from server.chats.events import LocalRooms, MessageEvents
from server.chats.history import fit
from server.chats.models import Chat, Message
from server.errors import FieldViolation, NotFound, PermissionDenied, ValidationFailed
from server.inference.backend import Chunk, GenerationRequest, Role, Turn
from server.inference.catalogue import Catalogue
from server.inference.config import ROUTER_KEY
from server.inference.service import Generation, InferenceService
from server.paging import page_window
from server.storage import Database
from server.storage.models import utcnow

if TYPE_CHECKING:
    from server.retrieval.service import Found, KnowledgeBase

log = logging.getLogger("relais.chats")

MAX_CONTENT = 4000
MAX_TITLE = 200
TITLE_FROM_MESSAGE = 60
# How often a reply being generated is written to the database.
FLUSH_EVERY = 1.0
DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True, slots=True)
class ChatPage:
    chats: list[Chat]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Exchange:
    user_message: Message
    assistant_message: Message


def title_from(content: str) -> str:
    """A title from the first user message: its first line, cut at a word boundary."""
    line = " ".join(content.strip().split("\n", 1)[0].split())
    if len(line) <= TITLE_FROM_MESSAGE:
        return line or "New chat"
    cut = line[:TITLE_FROM_MESSAGE].rsplit(" ", 1)[0] or line[:TITLE_FROM_MESSAGE]
    return cut + "…"


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Conversations belong to user accounts; sign in as a user")
    return principal.user_id


def _append(session: Any, chat: Chat | None, message: Message) -> None:
    """Add a message to a conversation, keeping the conversation's count and activity time."""
    session.add(message)
    if chat is not None:
        chat.message_count += 1
        chat.last_message_at = utcnow()


def with_passages(system_prompt: str, found: list[Found]) -> str:
    """The system prompt followed by the retrieved passages, numbered so the reply can cite them."""
    if not found:
        return system_prompt
    excerpts = "\n\n".join(f"[{index}] {passage.path}:\n{passage.text}" for index, passage in enumerate(found, 1))
    lead = "Excerpts from the documents and memory available to this conversation (cite them as [n]):"
    return f"{system_prompt}\n\n{lead}\n\n{excerpts}".strip()


class ReplyRecorder:
    """Writes an assistant reply as it is generated: created with the first text, rewritten at
    most every FLUSH_EVERY seconds, finished with its status whatever ends the generation."""

    def __init__(
        self,
        database: Database,
        chat_id: int,
        model: str,
        events: MessageEvents,
        *,
        sources: list[dict[str, Any]] | None = None,
        on_complete: Callable[[Message], Awaitable[None]] | None = None,
    ) -> None:
        self._database = database
        self._events = events
        self._chat_id = chat_id
        self._model = model
        self._sources = sources or None
        self._on_complete = on_complete
        self._flushed_at = 0.0
        self.message: Message | None = None

    async def record(self, generation: Generation) -> AsyncIterator[Chunk]:
        status = "incomplete"
        try:
            async for chunk in generation.chunks():
                if chunk.text and (self.message is None or time.monotonic() - self._flushed_at > FLUSH_EVERY):
                    await self._write(generation, "incomplete")
                yield chunk
            status = "complete"
        except Exception:
            status = "error"
            raise
        finally:
            # Shielded: a client that leaves cancels this task, and the partial reply must still be kept.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish(generation, status))

    async def _finish(self, generation: Generation, status: str) -> None:
        await self._write(generation, status)
        if self.message is not None:
            await self._events.stored(self.message)
            if status == "complete" and self._on_complete is not None:
                try:
                    await self._on_complete(self.message)
                except Exception:
                    log.exception("after-reply task failed for message %s", self.message.id)

    def _new_message(self, **fields: Any) -> Message:
        """The reply's row, with the model that writes it and the passages it was given."""
        return Message(chat_id=self._chat_id, role="assistant", llm_model=self._model, sources=self._sources, **fields)

    async def failed_to_start(self) -> None:
        """Record that the model could not even start: an empty reply with status error."""
        async with self._database.sessions() as session, session.begin():
            self.message = self._new_message(status="error")
            _append(session, await session.get(Chat, self._chat_id), self.message)
        await self._events.stored(self.message)

    async def _write(self, generation: Generation, status: str) -> None:
        self._flushed_at = time.monotonic()
        async with self._database.sessions() as session, session.begin():
            if self.message is None:
                self.message = self._new_message()
                _append(session, await session.get(Chat, self._chat_id), self.message)
            else:
                self.message = await session.merge(self.message)
            self.message.content = generation.text
            self.message.status = status
            self.message.prompt_tokens = generation.prompt_tokens
            self.message.completion_tokens = generation.completion_tokens


class ChatService:
    def __init__(
        self,
        database: Database,
        inference: InferenceService,
        catalogue: Catalogue,
        events: MessageEvents | None = None,
        *,
        knowledge: KnowledgeBase | None = None,
    ) -> None:
        self._database = database
        self._events = events or LocalRooms()
        self._knowledge = knowledge
        self._inference = inference
        self._catalogue = catalogue
        self._started = time.monotonic()

    # ------------------------------------------------------------------ conversations

    async def page(self, principal: Principal, *, limit: int, offset: int, search: str = "") -> ChatPage:
        offset, limit = page_window(skip=0, offset=offset, limit=limit)
        owner = _user_id(principal)
        condition = Chat.owner_id == owner
        if search.strip():
            pattern = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            in_messages = select(Message.id).where(
                Message.chat_id == Chat.id, Message.content.ilike(pattern, escape="\\")
            )
            condition = and_(condition, or_(Chat.title.ilike(pattern, escape="\\"), in_messages.exists()))
        async with self._database.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(Chat).where(condition))
            activity = func.coalesce(Chat.last_message_at, Chat.created_at)
            rows = await session.scalars(
                select(Chat).where(condition).order_by(activity.desc(), Chat.id.desc()).limit(limit).offset(offset)
            )
            return ChatPage(list(rows), int(total or 0), limit, offset)

    async def create(self, principal: Principal, *, agent_id: int | None, title: str) -> Chat:
        owner = _user_id(principal)
        title = title.strip()
        if len(title) > MAX_TITLE:
            raise ValidationFailed([FieldViolation(field="title", message=f"must be at most {MAX_TITLE} characters")])
        async with self._database.sessions() as session, session.begin():
            if agent_id is not None:
                agent = await session.get(Agent, agent_id)
                if agent is None or not (agent.is_public or agent.owner_id == owner):
                    raise NotFound(f"No agent {agent_id}")
            chat = Chat(owner_id=owner, agent_id=agent_id, title=title)
            session.add(chat)
        return await self.get(principal, chat.id)

    async def get(self, principal: Principal, chat_id: int) -> Chat:
        async with self._database.sessions() as session:
            return await self._owned(session, principal, chat_id)

    async def messages(self, principal: Principal, chat_id: int) -> list[Message]:
        async with self._database.sessions() as session:
            await self._owned(session, principal, chat_id)
            rows = await session.scalars(select(Message).where(Message.chat_id == chat_id).order_by(Message.id))
            return list(rows)

    async def rename(self, principal: Principal, chat_id: int, title: str) -> Chat:
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
    async def _owned(session: object, principal: Principal, chat_id: int) -> Chat:
        chat: Chat | None = await session.get(Chat, chat_id)  # type: ignore[attr-defined]
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

    def check_model(self, model: str) -> None:
        """A model the caller names must exist: 400 with the valid keys, before anything is stored."""
        self._catalogue.resolve(model, prompt_chars=0, max_tokens=1)

    async def stats(self, principal: Principal) -> dict[str, int]:
        """The caller's activity, counted now."""
        owner = _user_id(principal)
        async with self._database.sessions() as session:
            conversations = await session.scalar(select(func.count()).select_from(Chat).where(Chat.owner_id == owner))
            row = (
                await session.execute(
                    select(
                        func.count(Message.id),
                        func.sum(case((Message.role == "user", 1), else_=0)),
                        func.sum(case((Message.role == "assistant", 1), else_=0)),
                        func.sum(Message.prompt_tokens),
                        func.sum(Message.completion_tokens),
                    )
                    .join(Chat, Chat.id == Message.chat_id)
                    .where(Chat.owner_id == owner)
                )
            ).one()
            agents = await session.scalar(select(func.count()).select_from(Agent).where(Agent.owner_id == owner))
        messages, user_messages, assistant_messages, prompt_tokens, completion_tokens = (int(v or 0) for v in row)
        return {
            "conversations": int(conversations or 0),
            "messages": messages,
            "user_messages": user_messages,
            "assistant_messages": assistant_messages,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "agents": int(agents or 0),
            "models": len(self._catalogue.keys),
            "uptime_seconds": int(time.monotonic() - self._started),
            "memory_entries": await self._knowledge.memory_count(principal) if self._knowledge else 0,
        }

    # ------------------------------------------------------------------ messages

    async def start_reply(
        self,
        principal: Principal,
        chat_id: int,
        content: str,
        files: list[int],
        *,
        request_id: str,
        model: str = "",
        content_field: str = "content",
    ) -> tuple[Message, Generation | None, ReplyRecorder, BaseException | None]:
        """Store the user's message, then start the reply. Returns the stored message, the
        generation (None if it could not start, with the reason) and its recorder."""
        self.check_content(content, content_field)
        if files and self._knowledge is None:
            raise NotFound(f"No document {files[0]}")
        if model:
            self.check_model(model)
        # Retrieval first, before anything is stored: if it fails, the request fails whole.
        async with self._database.sessions() as session:
            chat = await self._owned(session, principal, chat_id)
            agent = chat.agent
        found: list[Found] = []
        if self._knowledge is not None:
            file_sources = await self._knowledge.check_files(principal, files)
            found = await self._knowledge.for_reply(
                principal,
                chat_id=chat_id,
                agent_id=agent.id if agent else None,
                file_sources=file_sources,
                query=content,
            )
        async with self._database.sessions() as session, session.begin():
            chat = await self._owned(session, principal, chat_id)
            history = list(
                await session.scalars(
                    select(Message).where(Message.chat_id == chat_id, Message.status == "complete").order_by(Message.id)
                )
            )
            user_message = Message(chat_id=chat_id, role="user", content=content, status="complete")
            _append(session, chat, user_message)
            if not chat.title:
                chat.title = title_from(content)
            agent = chat.agent
            system_prompt = with_passages(agent.system_prompt if agent else "", found)
            temperature = agent.temperature if agent else DEFAULT_TEMPERATURE
            # An agent may name a model this deployment does not serve: the router then chooses.
            wanted = model or (agent.model if agent else ROUTER_KEY)
            model_key = wanted if wanted in self._catalogue.keys else ROUTER_KEY
            learning_agent = agent.id if agent is not None and agent.learn_from_interaction else None
        turns = [Turn(Role.USER if m.role == "user" else Role.ASSISTANT, m.content) for m in history]
        turns.append(Turn(Role.USER, content))
        max_tokens = self._inference.max_tokens(None)
        prompt_chars = len(system_prompt) + sum(len(turn.content) for turn in turns)
        served = self._catalogue.resolve(model_key, prompt_chars=prompt_chars, max_tokens=max_tokens)
        request = GenerationRequest(
            request_id=request_id,
            turns=fit(system_prompt, turns, context_window=served.config.context_window, reply_tokens=max_tokens),
            max_tokens=max_tokens,
            temperature=temperature,
            caller=principal.subject,
        )
        await self._events.stored(user_message)
        on_complete = None
        if learning_agent is not None and self._knowledge is not None:
            knowledge, agent_id = self._knowledge, learning_agent

            async def on_complete(reply: Message) -> None:
                await knowledge.learn(principal, agent_id, question=content, answer=reply.content, chat_id=chat_id)

        recorder = ReplyRecorder(
            self._database,
            chat_id,
            served.key,
            self._events,
            sources=[passage.as_json() for passage in found],
            on_complete=on_complete,
        )
        try:
            generation = await self._inference.start(request, served.key)
        except Exception as error:
            await recorder.failed_to_start()
            return user_message, None, recorder, error
        return user_message, generation, recorder, None

    async def send(
        self, principal: Principal, chat_id: int, content: str, files: list[int], *, request_id: str
    ) -> Exchange:
        user_message, generation, recorder, failure = await self.start_reply(
            principal, chat_id, content, files, request_id=request_id
        )
        if generation is None:
            assert failure is not None
            raise failure
        async for _ in recorder.record(generation):
            pass
        assert recorder.message is not None
        return Exchange(user_message, recorder.message)
