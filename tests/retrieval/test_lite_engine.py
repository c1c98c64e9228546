"""lite_engine.py against Milvus Lite as released: the same operations on a stock child and on
an accelerated one must give the same answers, whatever state the rows are in (sealed in
segments or still in the memtable, written twice, deleted before or after a flush, spread over
owners, the partition key) and whichever search asks (dense, BM25, hybrid, with filters)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from server.retrieval import lite_engine
from server.retrieval.lite import MilvusLiteProcess
from server.retrieval.store import Hit, PassageFilter, PassageStore, SearchMode, StoredPassage

pytestmark = pytest.mark.slow

WORDS = [
    "serveur",
    "routeur",
    "imprimante",
    "pare-feu",
    "sauvegarde",
    "portail",
    "cluster",
    "cache",
    "proxy",
    "disque",
    "mémoire",
    "certificat",
    "métriques",
    "paquets",
    "connexions",
    "version",
    "correctif",
    "ticket",
    "fournisseur",
    "alerte",
    "journaux",
    "maintenance",
    "déploiement",
    "bascule",
    "incident",
    "réseau",
    "latence",
    "stockage",
    "quota",
]
DIMENSION = 8


def passage(rng: random.Random, number: int, *, owner: int, source: str, version: int = 0) -> StoredPassage:
    # Lengths vary so that BM25 scores rarely tie.
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + f" v{version}"
    return StoredPassage(
        chunk_id=f"c{number}",
        text=text,
        owner_id=owner,
        scope="document" if owner else "corpus",
        entity=f"user:{owner}",
        source=source,
        sha256="0" * 64,
        path=f"p{number}",
        start=0,
        end=len(text),
    )


async def write(stores: list[PassageStore], rows: list[StoredPassage], vectors: np.ndarray) -> None:
    for store in stores:
        await store.insert(rows, vectors)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[list[PassageStore]]:
    pair = [
        PassageStore(lite=MilvusLiteProcess(tmp_path / kind, accelerated=kind == "fast"), dimension=DIMENSION)
        for kind in ("stock", "fast")
    ]
    yield pair
    for store in pair:
        await store.close()


def vectors_for(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def build_history(stores: list[PassageStore]) -> None:
    """Rows in every state a search must tell apart."""
    rng, vectors = random.Random(5), np.random.default_rng(5)
    first = [passage(rng, n, owner=n % 3, source=f"s{n // 40}") for n in range(240)]
    await write(stores, first, vectors_for(vectors, len(first)))
    for store in stores:
        await store.flush()  # sealed
    rewritten = [passage(rng, n, owner=n % 3, source=f"s{n // 40}", version=1) for n in range(0, 240, 7)]
    await write(stores, rewritten, vectors_for(vectors, len(rewritten)))
    for store in stores:
        await store.delete(PassageFilter(sources=("s1",)))
        await store.flush()  # the rewrites and the deletion sealed too
    later = [passage(rng, n, owner=n % 3, source=f"s{n // 40}") for n in range(240, 300)]
    again = [passage(rng, n, owner=n % 3, source=f"s{n // 40}", version=2) for n in range(3, 240, 11)]
    await write(stores, later + again, vectors_for(vectors, len(later) + len(again)))
    for store in stores:
        await store.delete(PassageFilter(sources=("s4",)))  # still in the memtable


def assert_same(stock: list[Hit], fast: list[Hit]) -> None:
    # The same hits, in the same order (ties included), with the same scores to the bit.
    assert [(hit.passage, hit.score) for hit in fast] == [(hit.passage, hit.score) for hit in stock]


FILTERS = [
    PassageFilter(),
    PassageFilter(scope="corpus"),
    PassageFilter(owner_id=2, scope="document"),
    PassageFilter(sources=("s0", "s2", "s6")),
    [PassageFilter(owner_id=1), PassageFilter(scope="corpus")],
]


@pytest.mark.parametrize("mode", ["dense", "text", "hybrid"])
async def test_accelerated_lite_answers_as_lite_does(stores: list[PassageStore], mode: SearchMode) -> None:
    await build_history(stores)
    rng, generator = random.Random(11), np.random.default_rng(11)
    for query in range(12):
        vector = vectors_for(generator, 1)[0]
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        for where in FILTERS:
            stock, fast = [
                await store.search(vector, words, where=where, limit=10 + query, mode=mode) for store in stores
            ]
            assert stock, (mode, where)
            assert_same(stock, fast)


async def test_the_newest_version_is_the_one_found(stores: list[PassageStore]) -> None:
    await build_history(stores)
    fast = stores[1]
    hits = await fast.search(None, " ".join(WORDS), where=PassageFilter(), limit=400, mode="text")
    by_id = {hit.passage.chunk_id: hit.passage.text for hit in hits}
    assert len(by_id) == len(hits)  # one hit per passage
    assert by_id["c3"].endswith("v2") and by_id["c7"].endswith("v1")
    # s1 was deleted, then three of its passages written again; s4 deleted after its rewrites.
    assert sorted(hit.passage.chunk_id for hit in hits if hit.passage.source == "s1") == ["c47", "c58", "c69"]
    assert not any(hit.passage.source == "s4" for hit in hits)


async def test_a_collection_made_again_is_not_mistaken_for_the_old_one(tmp_path: Path) -> None:
    # Dropped and created again, a collection numbers its segment files from 1 again: what was
    # worked out for the old segments must not be taken for the new ones.
    store = PassageStore(lite=MilvusLiteProcess(tmp_path / "fast"), dimension=DIMENSION)
    rng, vectors = random.Random(3), np.random.default_rng(3)
    try:
        for round_number in range(2):
            numbers = [10 * round_number + n for n in range(5)]
            rows = [passage(rng, n, owner=0, source="gone" if n == numbers[0] else "kept") for n in numbers]
            await store.insert(rows, vectors_for(vectors, len(rows)))
            await store.flush()
            await store.delete(PassageFilter(sources=("gone",)))
            hits = await store.search(vectors_for(vectors, 1)[0], "", where=PassageFilter(), limit=20, mode="dense")
            assert sorted(hit.passage.chunk_id for hit in hits) == sorted(f"c{n}" for n in numbers[1:])
            await store._call(lambda client: client.drop_collection(store.collection))
    finally:
        await store.close()


def test_only_the_release_it_was_written_for_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    import milvus_lite
    from milvus_lite.engine import collection

    stock = collection.execute_search_with_index
    monkeypatch.setattr(milvus_lite, "__version__", "3.9.0")
    assert lite_engine.install() is False
    assert collection.execute_search_with_index is stock
