"""InferenceService and ModelService over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from relais.v1 import inference_pb2, inference_pb2_grpc, model_pb2, model_pb2_grpc

from server.errors import DomainError
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
FINISH = {Finish.STOP: inference_pb2.FINISH_REASON_STOP, Finish.LENGTH: inference_pb2.FINISH_REASON_LENGTH}


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


def usage(generation: Generation) -> inference_pb2.TokenUsage:
    return inference_pb2.TokenUsage(
        prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens
    )


def finish_reason(generation: Generation) -> inference_pb2.FinishReason.ValueType:
    return FINISH.get(generation.finish, inference_pb2.FINISH_REASON_STOP) if generation.finish else 0


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, service: InferenceService) -> None:
        self._service = service

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
    ) -> AsyncIterator[inference_pb2.GenerateEvent]:
        generation = await self._service.start(generation_request(request, self._service), request.model)
        request_id = generation.request.request_id
        sequence = 0
        yield inference_pb2.GenerateEvent(
            sequence=sequence,
            request_id=request_id,
            usage=usage(generation),
            status=inference_pb2.StreamStatus(
                state=inference_pb2.STREAM_STATE_STARTED,
                model=generation.model.key,
                backend=generation.model.backend.kind,
            ),
        )
        try:
            async for chunk in generation.chunks():
                if chunk.text:
                    sequence += 1
                    yield inference_pb2.GenerateEvent(
                        sequence=sequence,
                        request_id=request_id,
                        usage=usage(generation),
                        token=inference_pb2.TokenDelta(text=chunk.text, token_count=chunk.tokens),
                    )
        except DomainError as error:
            # Said in the stream for readers of events, then as the call's status by the error interceptor.
            yield inference_pb2.GenerateEvent(
                sequence=sequence + 1,
                request_id=request_id,
                usage=usage(generation),
                error=inference_pb2.StreamError(code=error.code, message=error.message),
            )
            raise
        yield inference_pb2.GenerateEvent(
            sequence=sequence + 1,
            request_id=request_id,
            usage=usage(generation),
            final=inference_pb2.GenerateFinal(
                text=generation.text,
                finish_reason=finish_reason(generation),
            ),
        )


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
