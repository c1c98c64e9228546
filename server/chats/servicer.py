"""ChatService and MessageService over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from relais.v1 import chat_pb2, chat_pb2_grpc, events_pb2

from server.agent.events import Finished, Planned, ReplyEvent, Started, TextDelta, Thought, ToolCalled, ToolReturned
from server.agents.access import usable
from server.chats.replies import ReplyOptions
from server.chats.service import ChatService
from server.chats.views import ChatView, MessageView
from server.convert import timestamp
from server.errors import DomainError, NotFound
from server.history.events import EventStream
from server.history.service import Journal
from server.inference.backend import Finish
from server.inference.service import SlowConsumer
from server.inference.servicer import FINISH
from server.interceptors.call import current_call, current_principal
from server.messages import say
from server.tools.servicer import struct

ROLES = {"user": chat_pb2.MESSAGE_ROLE_USER, "assistant": chat_pb2.MESSAGE_ROLE_ASSISTANT}
STATUSES = {
    "complete": chat_pb2.MESSAGE_STATUS_COMPLETE,
    "incomplete": chat_pb2.MESSAGE_STATUS_INCOMPLETE,
    "error": chat_pb2.MESSAGE_STATUS_ERROR,
}


def message_message(message: MessageView) -> chat_pb2.ChatMessage:
    converted = chat_pb2.ChatMessage(
        id=message.id,
        chat_id=message.chat_id,
        role=ROLES.get(message.role, chat_pb2.MESSAGE_ROLE_UNSPECIFIED),
        content=message.content,
        status=STATUSES.get(message.status, chat_pb2.MESSAGE_STATUS_UNSPECIFIED),
        usage=events_pb2.TokenUsage(prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens),
        created_at=timestamp(message.created_at),
    )
    if message.llm_model:
        converted.llm_model = message.llm_model
    for source in message.sources:
        json_format.ParseDict(source, converted.sources.add())
    for step in message.tool_steps:
        json_format.ParseDict(step, converted.tool_steps.add(), ignore_unknown_fields=True)
        tool = step.get("call", {}).get("tool", "")
        if tool and step.get("ran") and tool not in converted.tools_used:
            converted.tools_used.append(tool)
    return converted


def chat_message(chat: ChatView, messages: list[MessageView] | None = None) -> chat_pb2.Chat:
    converted = chat_pb2.Chat(
        id=chat.id,
        title=chat.title,
        user_id=chat.owner_id,
        messages=[message_message(message) for message in messages or ()],
        message_count=chat.message_count,
        created_at=timestamp(chat.created_at),
        updated_at=timestamp(chat.updated_at),
    )
    if chat.last_message_at is not None:
        converted.last_message_at.CopyFrom(timestamp(chat.last_message_at))
    if chat.agent_id is not None:
        converted.agent_id = chat.agent_id
    # Checked at every read: an agent made private since shows nothing of itself (name, avatar).
    if (agent := usable(chat.agent, chat.owner_id)) is not None:
        converted.agent.CopyFrom(chat_pb2.ChatAgent(id=agent.id, name=agent.name))
        if agent.avatar_url:
            converted.agent.avatar_url = agent.avatar_url
    return converted


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, chats: ChatService) -> None:
        self._chats = chats

    async def ListChats(self, request: chat_pb2.ListChatsRequest, context: Any) -> chat_pb2.ListChatsResponse:
        page = await self._chats.list_chats(current_principal(), limit=request.limit, offset=request.offset)
        return chat_pb2.ListChatsResponse(chats=[chat_message(chat) for chat in page.items], **page.offset_fields())

    async def CreateChat(self, request: chat_pb2.CreateChatRequest, context: Any) -> chat_pb2.Chat:
        agent_id = request.agent_id if request.HasField("agent_id") else None
        return chat_message(await self._chats.create(current_principal(), agent_id=agent_id, title=request.title))

    async def GetChat(self, request: chat_pb2.GetChatRequest, context: Any) -> chat_pb2.Chat:
        caller = current_principal()
        chat = await self._chats.get(caller, request.chat_id)
        return chat_message(chat, await self._chats.messages(caller, request.chat_id))

    async def UpdateChat(self, request: chat_pb2.UpdateChatRequest, context: Any) -> chat_pb2.Chat:
        return chat_message(await self._chats.update_chat(current_principal(), request.chat_id, request.title))

    async def DeleteChat(self, request: chat_pb2.DeleteChatRequest, context: Any) -> chat_pb2.DeleteChatResponse:
        await self._chats.delete(current_principal(), request.chat_id)
        return chat_pb2.DeleteChatResponse(message=say("chat_deleted", id=request.chat_id))


class MessageServicer(chat_pb2_grpc.MessageServiceServicer):
    def __init__(self, chats: ChatService, journal: Journal) -> None:
        self._chats = chats
        self._journal = journal

    async def SendMessage(self, request: chat_pb2.SendMessageRequest, context: Any) -> chat_pb2.SendMessageResponse:
        options = ReplyOptions(files=tuple(request.files), tools=tuple(request.tools), tool_choice=request.tool_choice)
        exchange = await self._chats.send(
            current_principal(), request.chat_id, request.content, request_id=current_call().request_id, options=options
        )
        return chat_pb2.SendMessageResponse(
            user_message=message_message(exchange.user_message),
            assistant_message=message_message(exchange.assistant_message),
        )

    async def StreamMessage(
        self, request: chat_pb2.StreamMessageRequest, context: Any
    ) -> AsyncIterator[events_pb2.StreamEvent]:
        options = ReplyOptions(tools=tuple(request.tools), tool_choice=request.tool_choice, content_field="message")
        replies = self._chats.reply(
            current_principal(), request.chat_id, request.message, request_id=current_call().request_id, options=options
        )
        async with contextlib.aclosing(reply_events(self._journal, replies, self._chats.completed_reply)) as events:
            async for event in events:
                yield event


def _usage(event: ReplyEvent) -> events_pb2.TokenUsage:
    return events_pb2.TokenUsage(
        prompt_tokens=event.usage.prompt_tokens, completion_tokens=event.usage.completion_tokens
    )


def _member(event: ReplyEvent) -> dict[str, Any]:
    """The StreamEvent member saying what a domain event says."""
    if isinstance(event, TextDelta):
        return {"token": events_pb2.TokenDelta(text=event.text, token_count=event.tokens, message_id=event.message_id)}
    if isinstance(event, Thought):
        return {"think": events_pb2.Think(text=event.text)}
    if isinstance(event, Planned):
        return {"plan": events_pb2.Plan(text=event.text, steps=event.steps)}
    if isinstance(event, ToolCalled):
        return {
            "tool_call": events_pb2.ToolCall(call_id=event.call_id, tool=event.tool, params=struct(event.arguments))
        }
    if isinstance(event, ToolReturned):
        result = events_pb2.ToolResult(
            call_id=event.call_id, tool=event.tool, content=event.content, is_error=event.is_error
        )
        return {"tool_result": result}
    if isinstance(event, Finished):
        final = events_pb2.FinalMessage(
            text=event.text,
            finish_reason=FINISH.get(event.finish, events_pb2.FINISH_REASON_STOP),
            model=event.model,
            message_id=event.message_id,
            chat_id=event.chat_id,
            tools_used=event.tools_used,
        )
        return {"final": final}
    if isinstance(event, Started):
        status = events_pb2.StreamStatus(
            state=events_pb2.STREAM_STATE_STARTED,
            model=event.model,
            backend=event.backend,
            chat_id=event.chat_id,
            user_message_id=event.user_message_id,
        )
        return {"status": status}
    raise TypeError(f"no StreamEvent member for {type(event).__name__}")


async def reply_events(
    journal: Journal,
    replies: AsyncGenerator[ReplyEvent, None],
    completed: Callable[[int], Awaitable[MessageView | None]] | None = None,
) -> AsyncGenerator[events_pb2.StreamEvent, None]:
    """A reply's domain events as the event family, journaled for /history/replay. A reply that
    cannot start fails the call before any event (HTTP 503 and a JSON body); a failure after the
    start is said in the stream (`error`, with the partial text) and then as the call's status.
    `completed(message_id)`: the reply if it was stored whole, for a client that left meanwhile."""
    first = await anext(replies)
    stream = await EventStream.open(journal, current_call().request_id, current_call().principal)
    text: list[str] = []
    message_id = 0
    try:
        yield stream.emit(usage=_usage(first), **_member(first))
        async for event in replies:
            if isinstance(event, TextDelta):
                if not message_id and event.message_id:
                    stream.link_message(event.message_id)
                text.append(event.text)
            if isinstance(event, TextDelta | Finished):
                message_id = event.message_id or message_id
            yield stream.emit(usage=_usage(event), **_member(event))
    except DomainError as error:
        partial = "" if isinstance(error, SlowConsumer) else "".join(text)
        yield stream.emit(
            error=events_pb2.StreamError(
                code=error.code, message=error.message, partial_text=partial, message_id=message_id
            )
        )
        raise
    finally:
        await replies.aclose()  # the reply's last write is done once this returns
        stored = None if stream.ended else await _stored_final(completed, message_id)
        await stream.close(partial_text="".join(text), message_id=message_id, stored=stored)


async def _stored_final(
    completed: Callable[[int], Awaitable[MessageView | None]] | None, message_id: int
) -> events_pb2.FinalMessage | None:
    """The final event of reply `message_id` if it was stored whole (its client gone meanwhile)."""
    if not message_id or completed is None or (reply := await completed(message_id)) is None:
        return None
    whole = Finished(
        text=reply.content, finish=Finish.STOP, model=reply.llm_model or "", message_id=reply.id, chat_id=reply.chat_id
    )
    final: events_pb2.FinalMessage = _member(whole)["final"]
    return final


def _conversation_id(value: int) -> int | None:
    """The chat a conversation_id names (None when 0: a new conversation); 404 below zero."""
    if value == 0:
        return None
    if value < 0:
        raise NotFound(f"No conversation {value}")
    return value


class ConversationServicer(chat_pb2_grpc.ConversationServiceServicer):
    """The Orchestrator's shapes over the same conversations."""

    def __init__(self, chats: ChatService, journal: Journal) -> None:
        self._chats = chats
        self._journal = journal

    async def Converse(self, request: chat_pb2.ConverseRequest, context: Any) -> AsyncIterator[events_pb2.StreamEvent]:
        caller = current_principal()
        options = ReplyOptions(
            model=request.model, tools=tuple(request.tools), tool_choice=request.tool_choice, content_field="message"
        )
        chat_id = _conversation_id(request.conversation_id)
        if chat_id is None:
            # Checked before the conversation is created: a refused request stores nothing.
            self._chats.check_request(caller, request.message, options)
            chat_id = (await self._chats.create(caller, agent_id=None, title="")).id
        replies = self._chats.reply(
            caller, chat_id, request.message, request_id=current_call().request_id, options=options
        )
        async with contextlib.aclosing(reply_events(self._journal, replies, self._chats.completed_reply)) as events:
            async for event in events:
                yield event

    async def ListConversations(
        self, request: chat_pb2.ListConversationsRequest, context: Any
    ) -> chat_pb2.ListConversationsResponse:
        page = await self._chats.list_chats(
            current_principal(), limit=request.limit, offset=request.offset, search=request.search
        )
        return chat_pb2.ListConversationsResponse(
            conversations=[chat_message(chat) for chat in page.items], **page.offset_fields()
        )

    async def GetConversation(self, request: chat_pb2.GetConversationRequest, context: Any) -> chat_pb2.Chat:
        caller = current_principal()
        chat = await self._chats.get(caller, request.id)
        return chat_message(chat, await self._chats.messages(caller, request.id))

    async def DeleteConversation(
        self, request: chat_pb2.DeleteConversationRequest, context: Any
    ) -> chat_pb2.DeleteChatResponse:
        await self._chats.delete(current_principal(), request.id)
        return chat_pb2.DeleteChatResponse(message=say("conversation_deleted", id=request.id))

    async def GetStats(self, request: chat_pb2.GetStatsRequest, context: Any) -> chat_pb2.Stats:
        return chat_pb2.Stats(**await self._chats.stats(current_principal()))
