"""InferenceService and ModelService over gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from relais.v1 import events_pb2, inference_pb2, inference_pb2_grpc, model_pb2, model_pb2_grpc

from server.errors import DomainError
from server.history.events import EventStream
from server.history.service import Journal
from server.inference.backend import Finish, GenerationRequest, Role, Turn
from server.inference.catalogue import Catalogue
from server.inference.config import ROUTER_KEY
from server.inference.service import Generation, InferenceService
from server.interceptors.call import current_call

ROLES = {
    inference_pb2.TURN_ROLE_SYSTEM: Role.SYSTEM,
    inference_pb2.TURN_ROLE_USER: Role.USER,
    inference_pb2.TURN_ROLE_ASSISTANT: Role.ASSISTANT,
    # An unspecified role is the user's: the common case for hand-written JSON.
    inference_pb2.TURN_ROLE_UNSPECIFIED: Role.USER,
}
QUEUED = events_pb2.STREAM_STATE_QUEUED
FINISH = {
    Finish.STOP: events_pb2.FINISH_REASON_STOP,
    Finish.LENGTH: events_pb2.FINISH_REASON_LENGTH,
    Finish.TOOL_CALLS: events_pb2.FINISH_REASON_TOOL_CALLS,
}


def generation_request(message: inference_pb2.GenerateRequest, service: InferenceService) -> GenerationRequest:
    call = current_call()
    principal = call.principal
    return GenerationRequest(
        request_id=call.request_id,
        prompt=message.prompt,
        turns=tuple(Turn(ROLES[turn.role], turn.content) for turn in message.messages),
        max_tokens=service.max_tokens(message.max_tokens if message.HasField("max_tokens") else None),
        temperature=message.temperature if message.HasField("temperature") else None,
        top_p=message.top_p if message.HasField("top_p") else None,
        stop=tuple(message.stop),
        seed=message.seed if message.HasField("seed") else None,
        caller=principal.subject if principal else call.client_ip,
    )


def usage(generation: Generation) -> events_pb2.TokenUsage:
    return events_pb2.TokenUsage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens)


def finish_reason(generation: Generation) -> events_pb2.FinishReason.ValueType:
    return FINISH.get(generation.finish, events_pb2.FINISH_REASON_STOP) if generation.finish else 0


def started(generation: Generation, **conversation: int) -> events_pb2.StreamStatus:
    return events_pb2.StreamStatus(
        state=events_pb2.STREAM_STATE_STARTED,
        model=generation.model.key,
        backend=generation.model.backend.kind,
        **conversation,
    )


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, service: InferenceService, journal: Journal) -> None:
        self._service = service
        self._journal = journal

    async def Generate(self, request: inference_pb2.GenerateRequest, context: Any) -> inference_pb2.GenerateResponse:
        generation = await self._service.start(generation_request(request, self._service), request.model)
        async for _ in generation.chunks():
            pass
        return inference_pb2.GenerateResponse(
            text=generation.text,
            model=generation.model.key,
            backend=generation.model.backend.kind,
            finish_reason=finish_reason(generation),
            usage=usage(generation),
            request_id=generation.request.request_id,
        )

    async def GenerateStream(
        self, request: inference_pb2.GenerateRequest, context: Any
    ) -> AsyncIterator[events_pb2.StreamEvent]:
        stream: EventStream | None = None
        generation: Generation | None = None
        try:
            # Waiting for its turn, the stream says its place (before that, a refusal is a plain status).
            async for step in self._service.start_queued(generation_request(request, self._service), request.model):
                if isinstance(step, Generation):
                    generation = step
                    break
                stream = stream or await self._open(request)
                yield stream.emit(status=events_pb2.StreamStatus(state=QUEUED, queue_position=step))
        except DomainError as error:
            if stream is not None:
                yield stream.emit(error=events_pb2.StreamError(code=error.code, message=error.message))
                await stream.close()
            raise
        assert generation is not None
        try:
            stream = stream or await self._open(request, generation)
            async with contextlib.aclosing(self._generate(stream, generation)) as events:
                async for event in events:
                    yield event
        finally:
            generation.place.release()

    async def _open(self, request: Any, generation: Generation | None = None) -> EventStream:
        request_id = generation.request.request_id if generation is not None else current_call().request_id
        return await EventStream.open(self._journal, request_id, current_call().principal)

    @staticmethod
    async def _generate(stream: EventStream, generation: Generation) -> AsyncGenerator[events_pb2.StreamEvent, None]:
        try:
            yield stream.emit(usage=usage(generation), status=started(generation))
            async for chunk in generation.chunks():
                if chunk.text:
                    delta = events_pb2.TokenDelta(text=chunk.text, token_count=chunk.tokens)
                    yield stream.emit(usage=usage(generation), token=delta)
            final = events_pb2.FinalMessage(
                text=generation.text, finish_reason=finish_reason(generation), model=generation.model.key
            )
            yield stream.emit(usage=usage(generation), final=final)
        except DomainError as error:
            # Said in the stream for readers of events, then as the call's status by the error interceptor.
            failure = events_pb2.StreamError(
                code=error.code, message=error.message, partial_text=generation.partial_text(error)
            )
            yield stream.emit(usage=usage(generation), error=failure)
            raise
        finally:
            await stream.close(partial_text=generation.text)


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue

    async def ListModels(self, request: model_pb2.ListModelsRequest, context: Any) -> model_pb2.ListModelsResponse:
        models = [model_pb2.Model(key=ROUTER_KEY, name="Sélection automatique", type="router")]
        for served in self._catalogue.models:
            config = served.config
            model = model_pb2.Model(
                key=config.key,
                name=config.display_name,
                type=config.location,
                backend=config.backend,
                context_window=config.context_window,
            )
            if size := served.size():
                model.size = size
            if config.provider:
                model.provider = config.provider
            models.append(model)
        return model_pb2.ListModelsResponse(models=models)
