"""The inference domain as the server assembles it: catalogue, backends, servicers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relais.v1 import inference_pb2, inference_pb2_grpc, model_pb2, model_pb2_grpc

from server.config import Settings
from server.history.service import Journal
from server.inference.catalogue import Catalogue, ServedModel, build_backend
from server.inference.config import default_models
from server.inference.service import InferenceService, Limits
from server.inference.servicer import InferenceServicer, ModelServicer
from server.registration import ServiceRegistration, register


@dataclass(frozen=True, slots=True)
class InferenceDomain:
    catalogue: Catalogue
    service: InferenceService

    def registrations(self, journal: Journal) -> list[ServiceRegistration]:
        servicer = InferenceServicer(self.service, journal)
        return [
            register(inference_pb2, inference_pb2_grpc, "InferenceService", servicer),
            register(model_pb2, model_pb2_grpc, "ModelService", ModelServicer(self.catalogue)),
        ]

    async def probe(self) -> bool:
        """Every configured backend can serve."""
        return all(await asyncio.gather(*(model.backend.probe() for model in self.catalogue.models)))

    def identity(self) -> tuple[str, str]:
        """(backends, model keys) by their real names, e.g. ("llama.cpp", "gemma3-270m")."""
        names = {"local": "llama.cpp", "triton": "triton", "openai": "openai"}
        backends = dict.fromkeys(names[model.config.backend] for model in self.catalogue.models)
        return ",".join(backends), ",".join(model.key for model in self.catalogue.models)

    async def close(self) -> None:
        await asyncio.gather(*(model.backend.close() for model in self.catalogue.models))


async def start_inference(settings: Settings) -> InferenceDomain:
    """Build a backend per configured model and start them (model loading goes on in the background)."""
    configs = settings.models or default_models(settings.llm_context_window)
    models = [
        ServedModel(
            config,
            build_backend(
                config,
                models_dir=settings.data_dir / "models",
                parallel=settings.llm_parallel,
                max_waiting=settings.llm_queue_limit,
                preload=settings.llm_preload,
                threads=settings.llm_threads,
            ),
        )
        for config in configs
    ]
    catalogue = Catalogue(models, default=settings.default_model, aliases=settings.model_aliases)
    await asyncio.gather(*(model.backend.start() for model in models))
    limits = Limits(
        default_max_tokens=settings.llm_default_max_tokens,
        max_tokens=settings.llm_max_tokens,
        message_interval=settings.llm_stream_interval_ms / 1000,
        messages_per_second=settings.llm_stream_messages_per_second,
        buffer_bytes=settings.stream_buffer_bytes,
        max_streams=settings.max_streams,
        stream_queue=settings.stream_queue,
    )
    return InferenceDomain(catalogue, InferenceService(catalogue, limits))
