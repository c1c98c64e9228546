"""Retrieval: query latency and recall on a large corpus, and the ingestion pipeline's overhead.

    .venv/bin/python -m bench retrieval            # 100,000 passages, 500 queries, ~800-passage ingestion
    .venv/bin/python -m bench retrieval --quick    # 10,000 passages, 100 queries, ~200-passage ingestion

Everything runs in this process, on this machine's CPU, with the real all-MiniLM-L6-v2.

Part 1, queries. A generated corpus of short passages is embedded once (the vectors are cached
under bench/.cache/, keyed by the generator and its size) and loaded into:

    milvus   Relais' PassageStore on a Milvus Lite child, as the server configures it: HNSW (M 16,
             efConstruction 200, ef 128) on inner product, BM25 on the text, flushed, and left to
             finish its background compaction and index builds before anything is timed; the
             child runs lite_engine.py's search paths, as the server's does
    stock    the same on a child running Milvus Lite as released (the comparison for lite_engine.py)
    faiss    a FAISS IndexFlatIP (exact) and an IndexHNSWFlat with the same HNSW parameters

Held-out queries are generated the same way and embedded. The exact top 10 of each query is
computed by brute force (NumPy, float32). One query at a time, each part of a /rag/query answer
is timed apart, then the whole (p50/p99, and recall@10 against the exact top 10 for the vector
searches):

    query embedding                 the embedder on the query text (what every search starts with):
                                    ONNX Runtime for a short request, and the same call on torch
    milvus round trip               has_collection: pymilvus and the gRPC hop to the Lite child
    milvus dense, ids only          a dense search returning only the key, no filter
    milvus dense[, no filter]       PassageStore.search(mode="dense") with (without) scope == "corpus"
    milvus bm25 / hybrid            mode="text" / mode="hybrid" (dense + BM25 fused by RRF)
    relais query                    KnowledgeBase.query_corpus (what POST /rag/query runs): the
                                    embedding, the hybrid search, the visibility check in SQL
    milvus lite as released: ...    dense, bm25 and hybrid on the stock child
    faiss flat / faiss hnsw         the same vectors in FAISS

Part 2, ingestion. The same text (generated paragraphs, cut into ~800 passages at the server's
default 800 characters) goes through

    raw model    SentenceTransformer.encode of exactly the passages the chunker cuts, batch 64
    pipeline     KnowledgeBase.upload of the text as a .txt file: content check, extraction,
                 chunking, embedding (batch 64), Milvus inserts overlapped with the next batch's
                 embedding, the SQL row, the stored file

alternately, ROUNDS times each; reported as passages/s and the pipeline's overhead
(1 - pipeline rate / raw rate).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import common

NAME = "retrieval"
ROUNDS = 3
STOCK_QUERIES = 100
TOP = 10
CACHE_DIR = Path(__file__).parent / ".cache"
GENERATOR_VERSION = 2

SUBJECTS = [
    "Le serveur de fichiers",
    "La base de données",
    "Le routeur du bureau",
    "L'imprimante du deuxième étage",
    "Le pare-feu",
    "La sauvegarde nocturne",
    "Le portail client",
    "L'application mobile",
    "Le cluster Kubernetes",
    "La file de messages",
    "Le service de paiement",
    "Le moteur de recherche",
    "La passerelle VPN",
    "Le tableau de bord",
    "L'agent de supervision",
    "Le cache Redis",
    "Le stockage objet",
    "Le proxy inverse",
]
EVENTS = [
    "a redémarré après une coupure de courant",
    "affiche des temps de réponse élevés",
    "refuse les connexions depuis la mise à jour",
    "a saturé son disque pendant la nuit",
    "perd des paquets de façon intermittente",
    "a été migré vers la nouvelle version",
    "renvoie des erreurs d'authentification",
    "consomme trop de mémoire",
    "a été sauvegardé avec succès",
    "n'envoie plus ses métriques",
    "a vu son certificat expirer",
    "a été déplacé dans un autre centre de données",
]
ACTIONS = [
    "L'équipe a appliqué le correctif",
    "Un ticket a été ouvert auprès du fournisseur",
    "La configuration a été restaurée",
    "Les journaux ont été archivés pour analyse",
    "Une alerte a été ajoutée à la supervision",
    "Le service a été redimensionné",
    "La procédure de reprise a été testée",
    "Le problème est suivi dans le registre des incidents",
]
DETAILS = [
    "le lundi matin",
    "pendant la maintenance",
    "après le déploiement de vendredi",
    "en heures de pointe",
    "depuis la semaine dernière",
    "lors du test de charge",
    "au moment de la bascule",
    "pendant les congés",
]


def passage(rng: random.Random, number: int) -> str:
    ticket = f"INC-{rng.randint(1000, 99999)}"
    return (
        f"{rng.choice(SUBJECTS)} {rng.choice(EVENTS)} {rng.choice(DETAILS)}. "
        f"{rng.choice(ACTIONS)} ({ticket}, note {number})."
    )


def note(rng: random.Random, number: int) -> str:
    """A one-sentence passage (about 90 characters): short, so 100,000 of them embed in minutes."""
    return f"{rng.choice(SUBJECTS)} {rng.choice(EVENTS)} {rng.choice(DETAILS)} (INC-{rng.randint(1000, 99999)})."


def corpus(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [note(rng, number) for number in range(count)]


def queries(count: int, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(EVENTS)} {rng.choice(DETAILS)} ?" for _ in range(count)]


def paragraphs(count: int, seed: int = 99) -> str:
    """About `count` passages of the server's default size, as one text file."""
    rng = random.Random(seed)
    blocks = []
    for number in range(count * 2):
        blocks.append(" ".join(passage(rng, number * 3 + k) for k in range(3)))
    return "\n\n".join(blocks)


def encode(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)


def cached_vectors(model: Any, texts: list[str], label: str) -> np.ndarray:
    digest = hashlib.sha256(("\n".join(texts) + f"|v{GENERATOR_VERSION}").encode()).hexdigest()[:16]
    path = CACHE_DIR / f"{label}-{len(texts)}-{digest}.npy"
    if path.exists():
        return np.load(path)
    started = time.perf_counter()
    vectors = np.concatenate([encode(model, texts[i : i + 8192]) for i in range(0, len(texts), 8192)])
    print(f"  embedded {len(texts)} {label} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    CACHE_DIR.mkdir(exist_ok=True)
    np.save(path, vectors)
    return vectors


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(common.percentile(ordered, 50) * 1000, 3),
        "p99_ms": round(common.percentile(ordered, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(row) & set(truth[index].tolist())) for index, row in enumerate(found))
    return round(hits / (len(found) * TOP), 4)


async def query_part(args: argparse.Namespace, work: Path, model: Any) -> dict[str, Any]:
    import faiss

    from server.retrieval.lite import MilvusLiteProcess
    from server.retrieval.models import CorpusFile
    from server.retrieval.store import PassageStore

    size = 10_000 if args.quick else 100_000
    count = 100 if args.quick else 500
    texts, asked = corpus(size), queries(count)
    vectors = cached_vectors(model, texts, "corpus")
    query_vectors = cached_vectors(model, asked, "queries")

    knowledge, database = await knowledge_base(work, model)
    store: PassageStore = knowledge._store
    # The same passages in Milvus Lite as released, to compare lite_engine.py's search paths with.
    stock = PassageStore(lite=MilvusLiteProcess(work / "milvus-stock", accelerated=False))
    files = 100
    started = time.perf_counter()
    await load(store, texts, vectors, files)
    load_seconds = time.perf_counter() - started
    await load(stock, texts, vectors, files)
    async with database.sessions() as session, session.begin():
        session.add_all(
            CorpusFile(path=f"bench/{n}.txt", sha256="0" * 64, file_size=0, source_key=f"bench{n}", chunk_count=0)
            for n in range(files)
        )

    settle_seconds = max(await settled(store), await settled(stock))
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction, hnsw.hnsw.efSearch = 200, 128
    hnsw.add(vectors)
    truth = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :TOP]
    embedder = knowledge._embedder

    results: dict[str, Any] = {}
    for name, target in query_targets(store, stock, knowledge, embedder, model, flat, hnsw).items():
        latencies: list[float] = []
        found: list[list[int]] = []
        # Lite as released takes up to a second a query at 100,000 passages: the first 100 do.
        number = STOCK_QUERIES if name.startswith("milvus lite as released") else len(asked)
        for index, text in enumerate(asked[:number]):
            began = time.perf_counter()
            answer = await target(query_vectors[index], text)
            latencies.append(time.perf_counter() - began)
            if answer is not None:
                found.append(answer)
        results[name] = {**summary(latencies), "queries": number}
        if found:
            results[name]["recall_at_10"] = recall(found, truth[:number])
        print(f"  {name}: {results[name]}", file=sys.stderr)
    await knowledge.close()
    await stock.close()
    await database.dispose()
    return {
        "passages": size,
        "queries": count,
        "load_seconds": round(load_seconds, 1),
        "settle_seconds": round(settle_seconds, 1),
        "targets": results,
    }


async def load(store: Any, texts: list[str], vectors: np.ndarray, files: int) -> None:
    """The corpus as `files` files' passages, inserted 5,000 at a time, then flushed."""
    from server.retrieval.store import StoredPassage

    per_file = -(-len(texts) // files)
    for offset in range(0, len(texts), 5000):
        rows = [
            StoredPassage(
                chunk_id=f"bench{number // per_file}:{number}",
                text=texts[number],
                owner_id=0,
                scope="corpus",
                entity="corpus",
                source=f"bench{number // per_file}",
                sha256="0" * 64,
                path=f"bench/{number // per_file}.txt",
                start=0,
                end=len(texts[number]),
            )
            for number in range(offset, min(offset + 5000, len(texts)))
        ]
        await store.insert(rows, vectors[offset : offset + len(rows)])
    await store.flush()


async def settled(store: Any, *, quiet_cpu_seconds: float = 0.15, window: float = 3.0) -> float:
    """Wait until Milvus Lite's background work (compacting the flushed segments, building their
    HNSW indexes) is over: it goes on for minutes after a flush at 100,000 passages, and a search
    meanwhile competes with it and may run by brute force on segments not indexed yet."""
    import psutil

    child = psutil.Process(store._lite._process.pid)
    began = time.perf_counter()
    while True:
        before = child.cpu_times()
        await asyncio.sleep(window)
        after = child.cpu_times()
        if after.user + after.system - before.user - before.system < quiet_cpu_seconds:
            return time.perf_counter() - began


Target = Any  # async (query vector, query text) -> the top 10 as corpus numbers, or None


def query_targets(
    store: Any, stock: Any, knowledge: Any, embedder: Any, model: Any, flat: Any, hnsw: Any
) -> dict[str, Target]:
    """Each part of a /rag/query answer alone, then whole, then FAISS on the same vectors."""
    from server.retrieval.store import OUTPUT_FIELDS, PassageFilter

    corpus_only = PassageFilter(scope="corpus")

    def numbers(hits: list[Any]) -> list[int]:
        return [int(hit.passage.chunk_id.rsplit(":", 1)[1]) for hit in hits]

    async def embed(_vector: np.ndarray, text: str) -> None:
        await embedder.embed([text])

    async def embed_on_torch(_vector: np.ndarray, text: str) -> None:
        # The same call on sentence-transformers (torch), as every query ran before the ONNX export.
        await asyncio.to_thread(encode, model, [text])

    async def round_trip(_vector: np.ndarray, _text: str) -> None:
        await store.probe()

    def milvus(mode: str, where: Any, lite: Any = store) -> Target:
        async def search(vector: np.ndarray, text: str) -> list[int] | None:
            hits = await lite.search(vector, text, where=where, limit=TOP, mode=mode)
            return numbers(hits) if mode == "dense" else None

        return search

    async def ids_only(vector: np.ndarray, _text: str) -> list[int]:
        rows = await store._call(
            lambda client: client.search(
                store.collection,
                data=[vector.tolist()],
                anns_field="embedding",
                limit=TOP,
                search_params={"metric_type": "IP", "params": {"ef": 128}},
                output_fields=["chunk_id"],
            )
        )
        return [int(str(hit["entity"]["chunk_id"]).rsplit(":", 1)[1]) for hit in rows[0]]

    def faiss_search(index: Any) -> Target:
        async def search(vector: np.ndarray, _text: str) -> list[int]:
            _, ids = index.search(vector[None, :], TOP)
            return [int(i) for i in ids[0]]

        return search

    async def relais(_vector: np.ndarray, text: str) -> None:
        await knowledge.query_corpus(text, TOP)

    assert "chunk_id" in OUTPUT_FIELDS
    return {
        "query embedding": embed,
        "query embedding on torch": embed_on_torch,
        "milvus round trip (has_collection)": round_trip,
        "milvus dense, ids only, no filter": ids_only,
        "milvus dense, no filter": milvus("dense", PassageFilter()),
        "milvus dense": milvus("dense", corpus_only),
        "milvus bm25": milvus("text", corpus_only),
        "milvus hybrid": milvus("hybrid", corpus_only),
        "milvus lite as released: dense": milvus("dense", corpus_only, stock),
        "milvus lite as released: bm25": milvus("text", corpus_only, stock),
        "milvus lite as released: hybrid": milvus("hybrid", corpus_only, stock),
        "relais query": relais,
        "faiss flat": faiss_search(flat),
        "faiss hnsw": faiss_search(hnsw),
    }


async def knowledge_base(work: Path, model: Any) -> Any:
    from server.retrieval.embeddings import LocalEmbedder
    from server.retrieval.lite import MilvusLiteProcess
    from server.retrieval.service import KnowledgeBase, RetrievalSettings
    from server.retrieval.store import PassageStore
    from server.storage import create_database

    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    database = create_database(f"sqlite+aiosqlite:///{work / 'relais.db'}")
    await database.migrate()
    store = PassageStore(lite=MilvusLiteProcess(work / "milvus"))
    knowledge = KnowledgeBase(
        database,
        store,
        LocalEmbedder(),
        settings=RetrievalSettings(documents_dir=work / "documents", corpus_dir=work / "corpus"),
    )
    return knowledge, database


async def ingestion_part(args: argparse.Namespace, work: Path, model: Any) -> dict[str, Any]:
    from server.auth import Principal
    from server.identity.models import User
    from server.retrieval.chunking import chunk_spans

    text = paragraphs(100 if args.quick else 400)
    spans = chunk_spans(text, size=800, overlap=100)
    passages = [text[span.start : span.end] for span in spans]
    data = text.encode()
    knowledge, database = await knowledge_base(work, model)
    async with database.sessions() as session, session.begin():
        user = User(email="bench@example.com", username="bench", password_hash="-")
        session.add(user)
    principal = Principal(subject=f"user:{user.id}", user_id=user.id)
    encode(model, passages[:64])  # warm both paths' model and thread pools
    await knowledge.upload(principal, filename="warm.txt", data=data[:20_000])

    raw_seconds, pipeline_seconds = [], []
    for round_number in range(ROUNDS):
        began = time.perf_counter()
        encode(model, passages)
        raw_seconds.append(time.perf_counter() - began)
        began = time.perf_counter()
        # A new name each round: the same file sent again under the same name is not re-indexed.
        document = await knowledge.upload(principal, filename=f"bench{round_number}.txt", data=data)
        pipeline_seconds.append(time.perf_counter() - began)
        assert document.chunk_count == len(passages)
    await knowledge.close()
    await database.dispose()
    raw_rate = len(passages) / statistics.median(raw_seconds)
    pipeline_rate = len(passages) / statistics.median(pipeline_seconds)
    result = {
        "passages": len(passages),
        "bytes": len(data),
        "raw_model_passages_per_s": round(raw_rate, 1),
        "pipeline_passages_per_s": round(pipeline_rate, 1),
        "pipeline_overhead": round(1 - pipeline_rate / raw_rate, 4),
        "raw_seconds": [round(s, 2) for s in raw_seconds],
        "pipeline_seconds": [round(s, 2) for s in pipeline_seconds],
    }
    print(f"  ingestion: {result}", file=sys.stderr)
    return result


def markdown(document: dict[str, Any]) -> str:
    query = document["query"]
    lines = [
        f"Queries on {query['passages']:,} passages ({query['queries']} queries, one at a time):",
        "",
        "| target | p50 ms | p99 ms | recall@10 |",
        "|---|---:|---:|---:|",
    ]
    for name, values in query["targets"].items():
        recall_text = f"{values['recall_at_10']:.4f}" if "recall_at_10" in values else "—"
        lines.append(f"| {name} | {values['p50_ms']:.2f} | {values['p99_ms']:.2f} | {recall_text} |")
    ingestion = document["ingestion"]
    lines += [
        "",
        f"Ingestion of {ingestion['passages']:,} passages ({ingestion['bytes']:,} bytes):",
        "",
        "| path | passages/s |",
        "|---|---:|",
        f"| raw model (encode) | {ingestion['raw_model_passages_per_s']:.1f} |",
        f"| pipeline (upload) | {ingestion['pipeline_passages_per_s']:.1f} |",
        "",
        f"Pipeline overhead: {ingestion['pipeline_overhead'] * 100:.1f}%",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from server.retrieval.embeddings import _load_local, packaged_model_dir

    model = _load_local(str(packaged_model_dir()), 2)
    with tempfile.TemporaryDirectory(prefix="relais-bench-retrieval-") as root:
        query = asyncio.run(query_part(args, Path(root) / "query", model))
        ingestion = asyncio.run(ingestion_part(args, Path(root) / "ingest", model))
    document = {
        "benchmark": NAME,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": common.versions(("pymilvus", "milvus-lite", "faiss-cpu", "sentence-transformers", "torch")),
        "query": query,
        "ingestion": ingestion,
    }
    common.write_json(common.output_path(args, NAME), document)
    print(markdown(document))
    return 0
