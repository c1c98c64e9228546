"""The passage store: one Milvus collection holding every passage, its vector and its words.

    store = PassageStore(lite=MilvusLiteProcess(Path("data/milvus")))   # or PassageStore("http://milvus:19530")
    await store.open()
    await store.insert([Passage(...), ...], vectors)
    hits = await store.search(vector, "query words", where=PassageFilter(scope="corpus"), limit=10)

Each passage carries its text (analysed, so Milvus derives its BM25 sparse vector), its
dense vector, and the fields that say whose it is: `owner_id` (the collection's partition
key, so each owner's passages live apart), `scope` (corpus, document, memory), `entity`
("agent:3", "chat:7", "user:5") and `source` (the key of one ingestion of one file or
memory). Searches run the dense and the BM25 ranking and fuse them with reciprocal rank
fusion (RRF).

pymilvus' client is synchronous (its async client cannot create indexes on Milvus Lite):
every call runs on one worker thread, which also keeps Milvus Lite's single-writer engine
free of concurrent calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker
from pymilvus.exceptions import MilvusException

from server import tracing
from server.errors import Unavailable
from server.retrieval.lite import MilvusLiteProcess
from server.retrieval.stopwords import ANALYZER

log = logging.getLogger("relais.retrieval")


def _not_an_rpc_error_report(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


# pymilvus logs every failed call at ERROR with a traceback, those `_call` handles included (a
# collection loaded again; an outage, which becomes a 503 in the access log): one outage would
# fill the log with tracebacks. Its errors are all such reports; its warnings stay.
logging.getLogger("pymilvus.decorators").addFilter(_not_an_rpc_error_report)

SearchMode = Literal["hybrid", "dense", "text"]
# Milvus' error codes (merr) for a collection that is not loaded, or not there at all.
COLLECTION_NOT_FOUND, COLLECTION_NOT_LOADED = 100, 101
# RRF's constant: a hit at rank r contributes 1 / (k + r). 60 is the value of the original paper.
RRF_K = 60
MAX_TEXT_BYTES = 65_535
OUTPUT_FIELDS = ["chunk_id", "text", "owner_id", "scope", "entity", "source", "sha256", "path", "start", "end"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PassageFilter:
    """The passages whose fields hold all the values given (a field left None: any value).
    Domain code says which passages it means with these; only this module writes Milvus'
    filter syntax, so no value (a file name, a key) can change what a filter says."""

    owner_id: int | None = None
    scope: str | None = None
    entity: str | None = None
    sources: tuple[str, ...] | None = None


# Where a store call takes a sequence of filters, it means the passages that match any of them.
Filters = PassageFilter | Sequence[PassageFilter]
# The primary key is never empty: these match every passage and none (Milvus wants a filter).
EVERY_PASSAGE, NO_PASSAGE = 'chunk_id != ""', 'chunk_id == ""'


def milvus_filter(where: Filters) -> str:
    """`where` in Milvus' filter syntax: field names are the store's own, and every value an
    integer or a quoted string literal."""
    if isinstance(where, PassageFilter):
        return _all_of(where)
    if not where:
        return NO_PASSAGE
    return " or ".join(f"({_all_of(each)})" for each in where)


def _all_of(where: PassageFilter) -> str:
    terms = []
    if where.owner_id is not None:
        terms.append(f"owner_id == {int(where.owner_id)}")
    if where.scope is not None:
        terms.append(f"scope == {_literal(where.scope)}")
    if where.entity is not None:
        terms.append(f"entity == {_literal(where.entity)}")
    if where.sources is not None:
        terms.append(f"source in [{', '.join(_literal(key) for key in where.sources)}]")
    return " and ".join(terms) or EVERY_PASSAGE


# A string literal of Milvus' filter syntax ends at a quote or a line break, and knows these
# escapes but no hexadecimal, unicode or octal ones: every other character stands for itself.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _literal(value: str) -> str:
    """`value` as a string literal of Milvus' filter syntax."""
    return '"' + value.translate(_ESCAPES) + '"'


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPassage:
    chunk_id: str
    text: str
    owner_id: int
    scope: str
    entity: str
    source: str
    sha256: str
    path: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage a search found, and its score: the higher, the closer."""

    passage: StoredPassage
    score: float


class PassageStore:
    def __init__(
        self,
        uri: str = "",
        *,
        lite: MilvusLiteProcess | None = None,
        token: str = "",
        collection: str = "relais_passages",
        dimension: int = 384,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 200,
        search_ef: int = 128,
    ) -> None:
        self.uri = uri
        self._lite = lite
        self.collection = collection
        self.dimension = dimension
        self._token = token
        self._hnsw = {"M": hnsw_m, "efConstruction": hnsw_ef_construction}
        self._search_ef = search_ef
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relais-milvus")
        self._client: MilvusClient | None = None
        self._opening: asyncio.Future[MilvusClient] | None = None

    async def _call(self, work: Callable[[MilvusClient], Any]) -> Any:
        """`work(client)` on the store's worker thread, opening the store first if needed.

        A Milvus Lite child that died is started again (on a new port, hence a new client), and
        a collection the server no longer has loaded (it restarted) is loaded again, once."""
        if self._client is not None and self._lite is not None and not self._lite.running:
            log.warning("Milvus Lite is no longer running; starting it again")
            await self._drop_client()
        if self._client is None:
            await self.open()
        client = self._client
        assert client is not None
        loop = asyncio.get_running_loop()
        try:
            try:
                with tracing.span("milvus", **{"db.system.name": "milvus", "db.collection.name": self.collection}):
                    return await loop.run_in_executor(self._executor, work, client)
            except MilvusException as error:
                if error.code not in (COLLECTION_NOT_LOADED, COLLECTION_NOT_FOUND):
                    raise
                log.warning("the vector store lost collection %s (%s); preparing it again", self.collection, error)
                await loop.run_in_executor(self._executor, self._prepare, client)
                return await loop.run_in_executor(self._executor, work, client)
        except MilvusException as error:
            raise Unavailable(f"The vector store failed: {error.message}") from error

    async def _drop_client(self) -> None:
        client, self._client, self._opening = self._client, None, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(self._executor, client.close)

    async def open(self) -> None:
        """Connect, and create the collection and its indexes the first time.

        Callers share one attempt, which a caller's cancellation does not stop (a health probe
        with a deadline must not leave the store half-open); a failed attempt can be retried."""
        if self._client is not None:
            return
        if self._opening is None or (self._opening.done() and self._opening.exception() is not None):
            self._opening = asyncio.ensure_future(self._open())
        try:
            self._client = await asyncio.shield(self._opening)
        except MilvusException as error:
            where = _without_credentials(self.uri)
            raise Unavailable(f"The vector store at {where} is unavailable: {error.message}") from error

    async def _open(self) -> MilvusClient:
        if self._lite is not None:
            self.uri = await self._lite.start()
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)

    def _connect(self) -> MilvusClient:
        # Milvus Lite keeps gRPC's server default (pings no closer than 5 minutes apart) and answers
        # pymilvus' 10-second keep-alive with GOAWAY "too_many_pings": it is local, no pings needed.
        options = {"grpc.keepalive_time_ms": 300_000} if self._lite is not None else {}
        client = MilvusClient(uri=self.uri, token=self._token, grpc_options=options)
        self._prepare(client)
        return client

    def _prepare(self, client: MilvusClient) -> None:
        """Create the collection and its indexes if the server has none, and load it."""
        if not client.has_collection(self.collection):
            client.create_collection(self.collection, schema=self._schema(), index_params=self._indexes(client))
        client.load_collection(self.collection)

    def _schema(self) -> Any:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field(
            "text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True, analyzer_params=ANALYZER
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("owner_id", DataType.INT64, is_partition_key=True)
        schema.add_field("scope", DataType.VARCHAR, max_length=16)
        schema.add_field("entity", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=64)
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("path", DataType.VARCHAR, max_length=1024)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        return schema

    def _indexes(self, client: MilvusClient) -> Any:
        indexes = client.prepare_index_params()
        indexes.add_index("embedding", index_type="HNSW", metric_type="IP", params=self._hnsw)
        indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        for field in ("scope", "entity", "source"):
            indexes.add_index(field, index_type="INVERTED")
        return indexes

    async def insert(self, passages: Sequence[StoredPassage], vectors: np.ndarray) -> None:
        rows = [
            {
                "chunk_id": p.chunk_id,
                "embedding": vector.tolist(),
                "text": p.text,
                "owner_id": p.owner_id,
                "scope": p.scope,
                "entity": p.entity,
                "source": p.source,
                "sha256": p.sha256,
                "path": p.path[:1024],
                "start": p.start,
                "end": p.end,
            }
            for p, vector in zip(passages, vectors, strict=True)
        ]
        if rows:
            await self._call(lambda client: client.insert(self.collection, rows))

    async def flush(self) -> None:
        """Seal what was inserted into indexed segments. Milvus Lite searches unsealed rows by brute
        force in Python (measured: 1 s a query at 20,000 rows, 75 ms once sealed), so ingestion
        flushes when it is done."""
        await self._call(lambda client: client.flush(self.collection))

    async def delete(self, where: Filters) -> None:
        await self._call(lambda client: client.delete(self.collection, filter=milvus_filter(where)))

    async def count(self, where: Filters) -> int:
        expression = milvus_filter(where)
        rows = await self._call(
            lambda client: client.query(self.collection, filter=expression, output_fields=["count(*)"])
        )
        return int(rows[0]["count(*)"]) if rows else 0

    async def passages(self, where: Filters, *, limit: int = 16_384) -> list[StoredPassage]:
        expression = milvus_filter(where)
        rows = await self._call(
            lambda client: client.query(self.collection, filter=expression, output_fields=OUTPUT_FIELDS, limit=limit)
        )
        return [passage_from_row(row) for row in rows]

    async def with_vectors(
        self, where: Filters, *, batch: int = 1000
    ) -> AsyncIterator[tuple[list[StoredPassage], np.ndarray]]:
        """Every passage matching `where` with its stored vector (float32, as inserted), a batch
        at a time, in no particular order (backups)."""
        fields, expression = [*OUTPUT_FIELDS, "embedding"], milvus_filter(where)
        iterator = await self._call(
            lambda client: client.query_iterator(
                self.collection, batch_size=batch, filter=expression, output_fields=fields
            )
        )
        try:
            while rows := await self._call(lambda _client: iterator.next()):
                vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
                yield [passage_from_row(row) for row in rows], vectors
        finally:
            await self._call(lambda _client: iterator.close())

    async def search(
        self, vector: np.ndarray | None, text: str, *, where: Filters, limit: int, mode: SearchMode = "hybrid"
    ) -> list[Hit]:
        """The `limit` best passages matching `where`: by meaning, by words, or both fused."""
        expression = milvus_filter(where)
        # Each ranking as (query data, field searched, search parameters).
        by_meaning = (
            [vector.tolist()] if vector is not None else [],
            "embedding",
            {"metric_type": "IP", "params": {"ef": max(self._search_ef, limit)}},
        )
        by_words = ([text], "sparse", {"metric_type": "BM25"})
        if mode == "hybrid":
            assert vector is not None
            requests = [
                AnnSearchRequest(data=data, anns_field=field, param=params, limit=limit, expr=expression)
                for data, field, params in (by_meaning, by_words)
            ]
            results = await self._call(
                lambda client: client.hybrid_search(
                    self.collection, requests, RRFRanker(RRF_K), limit=limit, output_fields=OUTPUT_FIELDS
                )
            )
        else:
            assert vector is not None or mode == "text"
            data, field, params = by_meaning if mode == "dense" else by_words
            results = await self._call(
                lambda client: client.search(
                    self.collection,
                    data=data,
                    anns_field=field,
                    search_params=params,
                    filter=expression,
                    limit=limit,
                    output_fields=OUTPUT_FIELDS,
                )
            )
        return [Hit(passage_from_row(hit["entity"]), float(hit["distance"])) for hit in (results[0] if results else [])]

    async def probe(self) -> bool:
        try:
            await self._call(lambda client: client.has_collection(self.collection))
        except Unavailable:
            return False
        return True

    async def close(self) -> None:
        opening = self._opening
        if self._client is None and opening is not None:
            # An opening still under way finishes first, so its client is closed too.
            with contextlib.suppress(Exception):
                self._client = await opening
        client, self._client = self._client, None
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, client.close)
        self._executor.shutdown(wait=True)
        if self._lite is not None:
            await self._lite.stop()


def _without_credentials(uri: str) -> str:
    """`uri` fit for a log line or an error body: a user:password@ in it is left out."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def passage_from_row(row: dict[str, Any]) -> StoredPassage:
    """A passage from a row of the collection (or of a backup's vectors/passages.jsonl)."""
    return StoredPassage(
        chunk_id=str(row["chunk_id"]),
        text=str(row["text"]),
        owner_id=int(row["owner_id"]),
        scope=str(row["scope"]),
        entity=str(row["entity"]),
        source=str(row["source"]),
        sha256=str(row["sha256"]),
        path=str(row["path"]),
        start=int(row["start"]),
        end=int(row["end"]),
    )
