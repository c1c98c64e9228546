"""ChatService and MessageService over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format
from relais.v1 import chat_pb2, chat_pb2_grpc, inference_pb2

from server.chats.models import Chat, Message
from server.chats.service import ChatService
from server.convert import timestamp
from server.errors import DomainError, NotFound
from server.interceptors.call import current_call, current_principal

ROLES = {"user": chat_pb2.MESSAGE_ROLE_USER, "assistant": chat_pb2.MESSAGE_ROLE_ASSISTANT}
STATUSES = {
    "complete": chat_pb2.MESSAGE_STATUS_COMPLETE,
    "incomplete": chat_pb2.MESSAGE_STATUS_INCOMPLETE,
    "error": chat_pb2.MESSAGE_STATUS_ERROR,
}


def message_message(message: Message) -> chat_pb2.ChatMessage:
    converted = chat_pb2.ChatMessage(
        id=message.id,
        chat_id=message.chat_id,
        role=ROLES.get(message.role, chat_pb2.MESSAGE_ROLE_UNSPECIFIED),
        content=message.content,
        status=STATUSES.get(message.status, chat_pb2.MESSAGE_STATUS_UNSPECIFIED),
        usage=inference_pb2.TokenUsage(
            prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens
        ),
        created_at=timestamp(message.created_at),
    )
    if message.llm_model:
        converted.llm_model = message.llm_model
    for source in message.sources or ():
        json_format.ParseDict(source, converted.sources.add())
    return converted


def chat_message(chat: Chat, messages: list[Message] | None = None) -> chat_pb2.Chat:
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
    if chat.agent is not None:
        converted.agent_id = chat.agent.id
        converted.agent.CopyFrom(chat_pb2.ChatAgent(id=chat.agent.id, name=chat.agent.name))
        if chat.agent.avatar_url:
            converted.agent.avatar_url = chat.agent.avatar_url
    return converted


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, chats: ChatService) -> None:
        self._chats = chats

    async def ListChats(self, request: chat_pb2.ListChatsRequest, context: Any) -> chat_pb2.ListChatsResponse:
        page = await self._chats.page(current_principal(), limit=request.limit, offset=request.offset)
        return chat_pb2.ListChatsResponse(
            chats=[chat_message(chat) for chat in page.chats], total=page.total, limit=page.limit, offset=page.offset
        )

    async def CreateChat(self, request: chat_pb2.CreateChatRequest, context: Any) -> chat_pb2.Chat:
        agent_id = request.agent_id if request.HasField("agent_id") else None
        return chat_message(await self._chats.create(current_principal(), agent_id=agent_id, title=request.title))

    async def GetChat(self, request: chat_pb2.GetChatRequest, context: Any) -> chat_pb2.Chat:
        caller = current_principal()
        chat = await self._chats.get(caller, request.chat_id)
        return chat_message(chat, await self._chats.messages(caller, request.chat_id))

    async def UpdateChat(self, request: chat_pb2.UpdateChatRequest, context: Any) -> chat_pb2.Chat:
        return chat_message(await self._chats.rename(current_principal(), request.chat_id, request.title))

    async def DeleteChat(self, request: chat_pb2.DeleteChatRequest, context: Any) -> chat_pb2.DeleteChatResponse:
        await self._chats.delete(current_principal(), request.chat_id)
        return chat_pb2.DeleteChatResponse(message=f"Chat {request.chat_id} deleted")


class MessageServicer(chat_pb2_grpc.MessageServiceServicer):
    def __init__(self, chats: ChatService) -> None:
        self._chats = chats

    async def SendMessage(self, request: chat_pb2.SendMessageRequest, context: Any) -> chat_pb2.SendMessageResponse:
        exchange = await self._chats.send(
            current_principal(),
            request.chat_id,
            request.content,
            list(request.files),
            request_id=current_call().request_id,
        )
        return chat_pb2.SendMessageResponse(
            user_message=message_message(exchange.user_message),
            assistant_message=message_message(exchange.assistant_message),
        )

    async def StreamMessage(
        self, request: chat_pb2.StreamMessageRequest, context: Any
    ) -> AsyncIterator[chat_pb2.MessageEvent]:
        user_message, generation, recorder, failure = await self._chats.start_reply(
            current_principal(),
            request.chat_id,
            request.message,
            [],
            request_id=current_call().request_id,
            content_field="message",
        )
        if generation is None:
            # Nothing sent yet: the call fails with the status (HTTP 503 and a JSON body).
            assert failure is not None
            raise failure
        sequence = 0
        yield chat_pb2.MessageEvent(sequence=sequence, user_message=message_message(user_message))
        try:
            async for chunk in recorder.record(generation):
                if chunk.text and recorder.message is not None:
                    sequence += 1
                    token = chat_pb2.ReplyToken(
                        token=chunk.text, message_id=recorder.message.id, token_count=chunk.tokens
                    )
                    yield chat_pb2.MessageEvent(sequence=sequence, token=token)
        except DomainError as error:
            message_id = recorder.message.id if recorder.message is not None else 0
            problem = chat_pb2.ReplyError(code=error.code, message=error.message, message_id=message_id)
            yield chat_pb2.MessageEvent(sequence=sequence + 1, error=problem)
            raise
        assert recorder.message is not None
        yield chat_pb2.MessageEvent(sequence=sequence + 1, assistant_message=message_message(recorder.message))


def _conversation_id(value: str) -> int | None:
    """The chat a conversation_id names ("42"; None when empty); 404 for anything else."""
    if not value:
        return None
    if not value.isdigit():
        raise NotFound(f"No conversation {value!r}")
    return int(value)


class ConversationServicer(chat_pb2_grpc.ConversationServiceServicer):
    """The Orchestrator's shapes over the same conversations."""

    def __init__(self, chats: ChatService) -> None:
        self._chats = chats

    async def Converse(self, request: chat_pb2.ConverseRequest, context: Any) -> AsyncIterator[chat_pb2.ChatEvent]:
        caller = current_principal()
        chat_id = _conversation_id(request.conversation_id)
        if chat_id is None:
            # Checked before the conversation is created: a refused request stores nothing.
            self._chats.check_content(request.message, "message")
            if request.model:
                self._chats.check_model(request.model)
            chat_id = (await self._chats.create(caller, agent_id=None, title="")).id
        user_message, generation, recorder, failure = await self._chats.start_reply(
            caller,
            chat_id,
            request.message,
            [],
            request_id=current_call().request_id,
            model=request.model,
            content_field="message",
        )
        del user_message
        if generation is None:
            assert failure is not None
            raise failure
        sequence = 0
        try:
            async for chunk in recorder.record(generation):
                if chunk.text:
                    yield chat_pb2.ChatEvent(
                        sequence=sequence, token=inference_pb2.TokenDelta(text=chunk.text, token_count=chunk.tokens)
                    )
                    sequence += 1
        except DomainError as error:
            message_id = recorder.message.id if recorder.message is not None else 0
            problem = chat_pb2.ReplyError(code=error.code, message=error.message, message_id=message_id)
            yield chat_pb2.ChatEvent(sequence=sequence, error=problem)
            raise
        result = chat_pb2.ChatResult(
            response=generation.text,
            conversation_id=str(chat_id),
            model_used=generation.model.key,
            tokens=chat_pb2.ChatTokens(prompt=generation.prompt_tokens, completion=generation.completion_tokens),
        )
        yield chat_pb2.ChatEvent(sequence=sequence, result=result)

    async def ListConversations(
        self, request: chat_pb2.ListConversationsRequest, context: Any
    ) -> chat_pb2.ListConversationsResponse:
        page = await self._chats.page(
            current_principal(), limit=request.limit, offset=request.offset, search=request.search
        )
        return chat_pb2.ListConversationsResponse(
            conversations=[chat_message(chat) for chat in page.chats],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )

    async def GetConversation(self, request: chat_pb2.GetConversationRequest, context: Any) -> chat_pb2.Chat:
        caller = current_principal()
        chat = await self._chats.get(caller, request.id)
        return chat_message(chat, await self._chats.messages(caller, request.id))

    async def DeleteConversation(
        self, request: chat_pb2.DeleteConversationRequest, context: Any
    ) -> chat_pb2.DeleteChatResponse:
        await self._chats.delete(current_principal(), request.id)
        return chat_pb2.DeleteChatResponse(message=f"Conversation {request.id} deleted")

    async def GetStats(self, request: chat_pb2.GetStatsRequest, context: Any) -> chat_pb2.Stats:
        return chat_pb2.Stats(**await self._chats.stats(current_principal()))
