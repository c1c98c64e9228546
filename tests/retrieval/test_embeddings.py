"""Embedders: the packaged model in-process, and the same model behind Triton's gRPC protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import httpx
import numpy as np
import pytest

from server.errors import Unavailable
from server.retrieval.embeddings import (
    SHORT_REQUEST,
    LocalEmbedder,
    TritonEmbedder,
    _load_local,
    _load_short_encoder,
    _normalize,
    packaged_model_dir,
)
from tests.conftest import stack_settings
from tests.identity.helpers import new_account
from tests.support import services
from tests.support.triton_embedding import TritonEmbeddingStandIn

TEXTS = ["Le projet JSR utilise React.", "Recette de la soupe à l'oignon.", "", "🙂 unicode ✓"]


def encode(texts: Sequence[str]) -> np.ndarray:
    model = _load_local(str(packaged_model_dir()), 2)
    return np.asarray(model.encode(list(texts), normalize_embeddings=False), dtype=np.float32)


@pytest.fixture(scope="module")
def triton() -> Iterator[TritonEmbeddingStandIn]:
    stand_in = TritonEmbeddingStandIn(encode).start()
    yield stand_in
    stand_in.close()


def test_local_embeddings_are_unit_vectors_that_rank_by_meaning() -> None:
    async def run() -> np.ndarray:
        embedder = LocalEmbedder()
        try:
            return await embedder.embed(["Quel framework pour le projet JSR ?", *TEXTS])
        finally:
            await embedder.close()

    vectors = asyncio.run(run())
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarities = vectors[1:] @ vectors[0]
    assert int(np.argmax(similarities)) == 0


def test_short_requests_on_onnx_runtime_get_torchs_vectors() -> None:
    """Queries run on the ONNX export, documents on torch: one index, so the same vectors."""
    model = _load_local(str(packaged_model_dir()), 2)
    short = _load_short_encoder(str(packaged_model_dir()), 2)
    assert short is not None, "the packaged model is exported"
    long_text = " ".join(["ingestion", "réplique", "délai"] * 200)  # past the model's 256 tokens: cut
    texts = [*TEXTS, long_text, "Quel framework pour le projet JSR ?"]  # one batch, padded to the longest
    assert len(texts) <= SHORT_REQUEST
    expected = np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)
    together = _normalize(short.encode(texts))
    alone = _normalize(np.concatenate([short.encode([text]) for text in texts]))
    assert together.dtype == np.float32 and together.shape == (len(texts), 384)
    assert np.abs(together - expected).max() < 1e-5 and np.abs(alone - expected).max() < 1e-5


def test_an_embedder_told_to_keep_torch_never_uses_the_export() -> None:
    """RELAIS_EMBEDDING_ONNX=false: short requests stay on torch (no export, no session)."""

    async def run(embedder: LocalEmbedder) -> np.ndarray:
        try:
            return await embedder.embed(["Quel framework pour le projet JSR ?"])
        finally:
            await embedder.close()

    model = _load_local(str(packaged_model_dir()), 2)
    expected = np.asarray(model.encode(["Quel framework pour le projet JSR ?"], normalize_embeddings=True))
    torch_only = LocalEmbedder(threads=2, short_on_onnx=False)
    assert torch_only._short_encoder(wait=True) is None
    assert np.abs(asyncio.run(run(torch_only)) - expected).max() < 1e-6
    assert LocalEmbedder(threads=2)._short_encoder(wait=True) is not None


def test_the_triton_embedder_gives_the_local_models_vectors(triton: TritonEmbeddingStandIn) -> None:
    async def run() -> tuple[np.ndarray, np.ndarray]:
        remote, local = TritonEmbedder(triton.url, "minilm", batch_size=3), LocalEmbedder()
        try:
            return await remote.embed(TEXTS), await local.embed(TEXTS)
        finally:
            await remote.close()
            await local.close()

    remote, local = asyncio.run(run())
    assert remote.shape == (4, 384) and np.allclose(remote, local, atol=1e-5)
    assert triton.requests >= 2  # four texts in batches of three


def test_triton_failures_are_unavailable(triton: TritonEmbeddingStandIn) -> None:
    async def embed(url: str, model: str) -> None:
        embedder = TritonEmbedder(url, model, timeout=2)
        try:
            await embedder.embed(["x"])
        finally:
            await embedder.close()

    with pytest.raises(Unavailable, match="unknown model"):
        asyncio.run(embed(triton.url, "absent"))
    with pytest.raises(Unavailable, match="failed"):
        asyncio.run(embed("127.0.0.1:1", "minilm"))


def test_a_stack_with_triton_embeddings_stores_and_finds_memories(
    triton: TritonEmbeddingStandIn, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = stack_settings(
        tmp_path_factory.mktemp("triton-embed"),
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'relais.db'}",
        embedding_backend="triton",
        embedding_url=triton.url,
        embedding_model="minilm",
    )
    live = services.start_stack_with_test_service(settings)
    try:
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            owner = new_account(http)
            before = triton.requests
            http.post("/api/memory", json={"content": "Relais parle à Triton."}, headers=owner.bearer)
            found = http.get("/api/memory/search", params={"q": "Triton"}, headers=owner.bearer).json()
        assert found["results"][0]["content"] == "Relais parle à Triton." and triton.requests == before + 2
    finally:
        live.stop()
