"""The retrieval domain as the server assembles it: store, embedder, knowledge base, servicers.

The vector store is opened at start (`retrieval_preload`, on by default; Milvus Lite takes a few
seconds to spawn), and the embedding model is loaded in the background after it
(`embedding_preload`, on by default; else at its first use, which then waits 10-20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from relais.v1 import retrieval_pb2, retrieval_pb2_grpc

from server.config import Settings
from server.registration import ServiceRegistration, register
from server.retrieval.embeddings import Embedder, LocalEmbedder, TritonEmbedder
from server.retrieval.lite import MilvusLiteProcess
from server.retrieval.service import KnowledgeBase, RetrievalSettings
from server.retrieval.servicer import DocumentServicer, MemoryServicer, RetrievalServicer
from server.retrieval.store import PassageStore
from server.storage import Database

log = logging.getLogger("relais.retrieval")


@dataclass(frozen=True, slots=True)
class RetrievalDomain:
    knowledge: KnowledgeBase
    store: PassageStore
    embedder: Embedder
    _warming: list[asyncio.Task[None]] = field(default_factory=list)

    def registrations(self) -> list[ServiceRegistration]:
        return [
            register(retrieval_pb2, retrieval_pb2_grpc, "RetrievalService", RetrievalServicer(self.knowledge)),
            register(retrieval_pb2, retrieval_pb2_grpc, "MemoryService", MemoryServicer(self.knowledge)),
            register(retrieval_pb2, retrieval_pb2_grpc, "DocumentService", DocumentServicer(self.knowledge)),
        ]

    async def preload(self) -> None:
        """Open the vector store now; a store that is down is reported by /health, not fatal."""
        try:
            await self.store.open()
        except Exception as error:
            log.warning("the vector store is not available yet: %s", error)

    def preload_embedder(self) -> None:
        """Load the embedding model in the background: the server answers meanwhile."""
        if isinstance(self.embedder, LocalEmbedder):
            self.embedder.preload()  # a thread that never delays the server's exit
        else:
            self._warming.append(asyncio.create_task(self._warm(), name="embedding-preload"))

    async def preloaded(self, within: float) -> None:
        """Return once the embedding model's preload has ended, or `within` seconds have passed."""
        if isinstance(self.embedder, LocalEmbedder):
            await asyncio.to_thread(self.embedder.preloaded.wait, within)
        elif self._warming:
            await asyncio.wait(self._warming, timeout=within)

    async def _warm(self) -> None:
        started = time.perf_counter()
        try:
            await self.embedder.embed(["warm up"])
        except Exception as error:
            log.warning("the embedding model could not be loaded in advance: %s", error)
            return
        log.info("embedding model ready in %.1fs", time.perf_counter() - started)

    async def probe(self) -> bool:
        return await self.store.probe()

    async def sweep(self) -> None:
        """Remove the passages and files no row names (the ledger's; nothing to do, no store call)."""
        cleared = await self.knowledge.cleanup.sweep()
        if cleared:
            log.info("removed the passages and files of %d sources no row names", cleared)

    async def close(self) -> None:
        for task in self._warming:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.knowledge.close()


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_backend == "triton":
        assert settings.embedding_url is not None
        return TritonEmbedder(
            settings.embedding_url,
            settings.embedding_model,
            input_name=settings.embedding_input,
            output_name=settings.embedding_output,
            dimension=settings.embedding_dimension,
        )
    return LocalEmbedder(threads=settings.embedding_threads, short_on_onnx=settings.embedding_onnx)


def start_retrieval(settings: Settings, database: Database) -> RetrievalDomain:
    embedder = build_embedder(settings)
    store = PassageStore(
        settings.milvus_uri or "",
        lite=None if settings.milvus_uri else MilvusLiteProcess(settings.data_dir / "milvus"),
        token=settings.milvus_token.get_secret_value() if settings.milvus_token else "",
        collection=settings.milvus_collection,
        dimension=embedder.dimension,
    )
    knowledge = KnowledgeBase(
        database,
        store,
        embedder,
        settings=RetrievalSettings(
            documents_dir=settings.documents_path,
            corpus_dir=settings.corpus_path,
            max_upload_bytes=settings.max_upload_bytes,
            chunk_chars=settings.chunk_chars,
            chunk_overlap=settings.chunk_overlap,
            reply_passages=settings.reply_passages,
            ingest_grace_seconds=settings.ingest_grace_seconds,
        ),
    )
    return RetrievalDomain(knowledge, store, embedder)
