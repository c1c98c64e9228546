"""OpenAIService over gRPC: protos to the service's values and back; the replies' domain events
become the event family as every chat route's do (chats.servicer.reply_events), which the bridge
frames as OpenAI's objects and chunks."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from relais.v1 import events_pb2, openai_pb2, openai_pb2_grpc

from server.chats.servicer import reply_events
from server.history.service import Journal
from server.interceptors.call import current_call, current_principal
from server.openai_api import requests
from server.openai_api.service import OpenAIService
from server.openai_api.values import ModelEntry

VIA_METADATA = "x-relais-via"


def via_of(context: Any) -> tuple[str, ...]:
    """The hops named by the X-Relais-Via header (the loop guard's path)."""
    for key, value in context.invocation_metadata() or ():
        if key == VIA_METADATA and isinstance(value, str):
            return tuple(hop.strip() for hop in value.split(",") if hop.strip())
    return ()


def model_message(entry: ModelEntry) -> openai_pb2.OpenAIModel:
    return openai_pb2.OpenAIModel(id=entry.id, object="model", created=entry.created, owned_by=entry.owned_by)


def embedding_message(index: int, vector: Any, encoding: str) -> openai_pb2.OpenAIEmbedding:
    message = openai_pb2.OpenAIEmbedding(object="embedding", index=index)
    if encoding == "base64":
        message.embedding.string_value = base64.b64encode(vector.astype("<f4").tobytes()).decode()
    else:
        message.embedding.list_value.extend(vector.tolist())
    return message


class OpenAIServicer(openai_pb2_grpc.OpenAIServiceServicer):
    def __init__(self, service: OpenAIService, journal: Journal) -> None:
        self._service = service
        self._journal = journal

    async def ListOpenAIModels(
        self, request: openai_pb2.ListOpenAIModelsRequest, context: Any
    ) -> openai_pb2.ListOpenAIModelsResponse:
        entries = await self._service.models(current_call().principal)
        return openai_pb2.ListOpenAIModelsResponse(object="list", data=[model_message(entry) for entry in entries])

    async def GetOpenAIModel(self, request: openai_pb2.GetOpenAIModelRequest, context: Any) -> openai_pb2.OpenAIModel:
        return model_message(await self._service.model(current_call().principal, request.model))

    async def CreateChatCompletion(
        self, request: openai_pb2.CreateChatCompletionRequest, context: Any
    ) -> AsyncIterator[events_pb2.StreamEvent]:
        chat = requests.chat_request(request, via=via_of(context))
        replies = self._service.chat(current_principal(), chat, request_id=current_call().request_id)
        async with contextlib.aclosing(reply_events(self._journal, replies)) as events:
            async for event in events:
                yield event

    async def CreateCompletion(
        self, request: openai_pb2.CreateCompletionRequest, context: Any
    ) -> AsyncIterator[events_pb2.StreamEvent]:
        completion = requests.completion_request(request, via=via_of(context))
        replies = self._service.complete(current_principal(), completion, request_id=current_call().request_id)
        async with contextlib.aclosing(reply_events(self._journal, replies)) as events:
            async for event in events:
                yield event

    async def CreateEmbeddings(
        self, request: openai_pb2.CreateEmbeddingsRequest, context: Any
    ) -> openai_pb2.CreateEmbeddingsResponse:
        encoding = request.encoding_format or "float"
        if encoding not in ("float", "base64"):
            raise requests.invalid("encoding_format", 'must be "float" or "base64"')
        texts = requests.texts(request.input if request.HasField("input") else None)
        dimensions = request.dimensions if request.HasField("dimensions") else None
        embedded = await self._service.embed(current_principal(), request.model, texts, dimensions=dimensions)
        return openai_pb2.CreateEmbeddingsResponse(
            object="list",
            data=[embedding_message(index, vector, encoding) for index, vector in enumerate(embedded.vectors)],
            model=self._service.embedding_model,
            usage=openai_pb2.OpenAIEmbeddingUsage(
                prompt_tokens=embedded.prompt_tokens, total_tokens=embedded.prompt_tokens
            ),
        )

    async def GetOpenAIUsage(
        self, request: openai_pb2.GetOpenAIUsageRequest, context: Any
    ) -> openai_pb2.GetOpenAIUsageResponse:
        user_id, rows = await self._service.usage(
            current_principal(),
            user_id=request.user_id if request.HasField("user_id") else None,
            days=request.days if request.HasField("days") else None,
        )
        data = [
            openai_pb2.OpenAIUsage(
                date=row.day,
                endpoint=row.endpoint,
                model=row.model,
                requests=row.requests,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
            )
            for row in rows
        ]
        return openai_pb2.GetOpenAIUsageResponse(object="list", data=data, user_id=user_id)
