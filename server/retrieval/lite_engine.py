"""Milvus Lite's searches without a Python step per stored passage.

Milvus Lite 3.2 runs its engine in Python. Its indexes are fine (FAISS HNSW answers a dense
query in a fraction of a millisecond at 100,000 passages), but around them, every search walks
every stored row in Python to decide which rows are live (the newest version of each primary
key, not deleted), and its BM25 scores every posting of every query word in Python: a profile
of the Lite child at 20,000 passages put 48% of a dense search in those loops and 2.4% in FAISS,
and a search cost ~150 ms at 100,000 passages, a hybrid one ~1 s.

This module gives the same answers with NumPy:

- which rows are live is worked out once per set of sealed segments (they never change; a
  flush or a compaction makes a new set) and then only corrected, per search, for what is not
  sealed yet: rows in the memtable and deletions;
- BM25 scores a query word's whole posting list at once.

`install()` puts these in place of Milvus Lite's own functions, in the Lite child process only
(`python -m server.retrieval.lite_child`), and only on the Milvus Lite release they were
written against: on another release it changes nothing and says so, and Lite answers as it
would alone. tests/retrieval/test_lite_engine.py runs the same operations against a stock
child and an accelerated one and requires the same answers.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("relais.retrieval")

# The release whose internals this module replaces, and was checked against.
MILVUS_LITE_RELEASE = "3.2.2"


def install() -> bool:
    """Replace Milvus Lite's search loops with this module's; False (and nothing changed) on
    a release other than the one they were written for."""
    import milvus_lite
    from milvus_lite.engine import collection
    from milvus_lite.index.sparse_inverted import SparseInvertedIndex

    if milvus_lite.__version__ != MILVUS_LITE_RELEASE:
        log.warning(
            "Milvus Lite %s is not %s: its own search paths stay in place (slower at scale)",
            milvus_lite.__version__,
            MILVUS_LITE_RELEASE,
        )
        return False
    collection.execute_search_with_index = search_with_index  # type: ignore[assignment]
    collection.Collection._search_sparse = search_sparse  # type: ignore[method-assign]
    SparseInvertedIndex.search = bm25_search  # type: ignore[method-assign]
    return True


# ── which stored rows are live ───────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SealedVersions:
    """For one set of sealed segments, laid end to end: each row's sequence number, whether it
    holds its key's newest version among them, and where each key's rows are."""

    key: tuple[tuple[str, int], ...]
    offsets: np.ndarray  # where each segment starts in the concatenation
    seqs: np.ndarray
    newest: np.ndarray
    position: dict[Any, int]  # key -> a row holding its newest version
    repeated: dict[Any, list[int]]  # key -> all its rows, for keys stored more than once

    def rows_of(self, pk: Any) -> Iterable[int]:
        rows = self.repeated.get(pk)
        if rows is not None:
            return rows
        row = self.position.get(pk)
        return () if row is None else (row,)

    def newest_seq(self, pk: Any) -> int:
        row = self.position.get(pk)
        return -1 if row is None else int(self.seqs[row])


_sealed_lock = threading.Lock()
_sealed: dict[tuple[tuple[str, int], ...], SealedVersions] = {}


def sealed_versions(segments: Sequence[Any]) -> SealedVersions:
    """The versions of `segments`, computed once per set: a segment's file is never rewritten."""
    key = tuple((str(segment.file_path), int(segment.num_rows)) for segment in segments)
    found = _sealed.get(key)
    if found is not None:
        return found
    versions = _versions_of(key, segments)
    with _sealed_lock:
        _sealed.clear()  # one set is current at a time: a new one retires the last
        _sealed[key] = versions
    return versions


def _versions_of(key: tuple[tuple[str, int], ...], segments: Sequence[Any]) -> SealedVersions:
    sizes = [len(segment.pks) for segment in segments]
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if sizes else np.zeros(0, np.int64)
    seqs = np.concatenate([np.asarray(s.seqs, dtype=np.int64) for s in segments]) if sizes else np.zeros(0, np.int64)
    position: dict[Any, int] = {}
    repeated: dict[Any, list[int]] = {}
    seq_list = seqs.tolist()
    for row, pk in enumerate(itertools.chain.from_iterable(segment.pks for segment in segments)):
        held = position.get(pk)
        if held is None:
            position[pk] = row
            continue
        repeated.setdefault(pk, [held]).append(row)
        if seq_list[row] > seq_list[held]:
            position[pk] = row
    newest = np.zeros(len(seq_list), dtype=bool)
    newest[np.fromiter(position.values(), dtype=np.int64, count=len(position))] = True
    for pk, rows in repeated.items():  # rows sharing the newest sequence number all count
        best = seq_list[position[pk]]
        for row in rows:
            newest[row] = seq_list[row] == best
    return SealedVersions(key, offsets, seqs, newest, position, repeated)


def live_rows(
    versions: SealedVersions,
    memtable_pks: Sequence[Any],
    memtable_seqs: Sequence[int],
    is_deleted: Callable[[Any, int], bool],
    tombstones: Iterable[tuple[Any, int]],
    pending: dict[Any, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Which sealed rows and which memtable rows hold their key's newest version, across both,
    and are not deleted (`tombstones`: sealed deletions, `pending`: deletions in the memtable,
    each as (key, sequence number); a deletion hides the versions older than itself)."""
    sealed = versions.newest.copy()
    seqs = [int(seq) for seq in memtable_seqs]
    newest_in_memtable: dict[Any, int] = {}
    for pk, seq in zip(memtable_pks, seqs, strict=True):
        if seq > newest_in_memtable.get(pk, -1):
            newest_in_memtable[pk] = seq
    for pk, seq in newest_in_memtable.items():
        if seq > versions.newest_seq(pk):
            for row in versions.rows_of(pk):
                sealed[row] = False
    for pk, deleted_at in itertools.chain(tombstones, pending.items()):
        hide_older(sealed, versions, pk, deleted_at)
    memtable = np.fromiter(
        (
            seq == max(newest_in_memtable[pk], versions.newest_seq(pk))
            and not is_deleted(pk, seq)
            and pending.get(pk, -1) <= seq
            for pk, seq in zip(memtable_pks, seqs, strict=True)
        ),
        dtype=bool,
        count=len(seqs),
    )
    return sealed, memtable


def hide_older(live: np.ndarray, versions: SealedVersions, pk: Any, deleted_at: int) -> None:
    """A deletion at `deleted_at` hides the versions of `pk` written before it."""
    for row in versions.rows_of(pk):
        if deleted_at > versions.seqs[row]:
            live[row] = False


def _tombstones(delta_index: Any) -> Iterable[tuple[Any, int]]:
    deletions = getattr(delta_index, "_map", None)
    return (deletions if deletions is not None else delta_index.snapshot()).items()


# ── dense search ─────────────────────────────────────────────────────────────────────────────


def search_with_index(
    query_vectors: np.ndarray,
    segments: Iterable[Any],
    memtable: Any,
    delta_index: Any,
    top_k: int,
    metric_type: str,
    pk_field: str,
    vector_field: str,
    partition_names: list[str] | None = None,
    compiled_filter: Any = None,
    output_fields: list[str] | None = None,
    indexed_filter_plan: Any = None,
    project_record_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    search_params: dict[str, Any] | None = None,
) -> list[list[dict[str, Any]]]:
    """Milvus Lite's `execute_search_with_index`, same arguments and answers: each sealed
    segment searched through its vector index and the memtable by brute force, over the live
    rows that pass the filter, then the best `top_k` of all of them."""
    from milvus_lite.index.brute_force import BruteForceIndex
    from milvus_lite.search.filter import evaluate_mask
    from milvus_lite.search.indexed_filter import evaluate_segment_filter

    queries = np.asarray(query_vectors, dtype=np.float32)
    queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
    nq = int(queries.shape[0])
    if nq == 0 or top_k <= 0:
        return [[] for _ in range(nq)]
    wanted = set(partition_names) if partition_names else None
    scope = [s for s in segments if s.num_rows > 0 and (wanted is None or s.partition in wanted)]
    mt_pks, mt_seqs, mt_vectors, mt_refs, mt_table = memtable.to_search_snapshot(
        vector_field=vector_field, partition_names=partition_names, include_table=compiled_filter is not None
    )
    if not scope and not mt_pks:
        return [[] for _ in range(nq)]
    versions = sealed_versions(scope)
    pending = {pk: entry[0] for pk, entry in memtable.delete_index_snapshot().items()}
    sealed, in_memtable = live_rows(
        versions, mt_pks, mt_seqs, delta_index.is_deleted, _tombstones(delta_index), pending
    )

    candidates: list[list[tuple[float, int, int]]] = [[] for _ in range(nq)]

    def recall(source: int, vectors: np.ndarray, mask: np.ndarray, index: Any) -> None:
        if not mask.any():
            return
        index = index if index is not None else BruteForceIndex.build(vectors, metric_type)
        ids, distances = index.search(queries, top_k, valid_mask=None if mask.all() else mask, params=search_params)
        for q in range(nq):
            for lid, distance in zip(ids[q].tolist(), distances[q].tolist(), strict=True):
                if lid < 0:
                    break
                candidates[q].append((float(distance), source, lid))

    for number, segment in enumerate(scope):
        start = int(versions.offsets[number])
        mask = sealed[start : start + segment.num_rows]
        vectors, has_vector = segment.vector_data(vector_field)
        if compiled_filter is not None:
            mask = mask & evaluate_segment_filter(segment, compiled_filter, indexed_filter_plan).astype(bool)
        if has_vector is not None:
            mask = mask & np.asarray(has_vector, dtype=bool)
        recall(number, vectors, mask, segment.indexes.get(vector_field))
    if mt_pks:
        if compiled_filter is not None and mt_table is not None:
            in_memtable = in_memtable & evaluate_mask(compiled_filter, mt_table).astype(bool)
        recall(len(scope), mt_vectors, in_memtable, None)

    def record_of(source: int, lid: int) -> dict[str, Any]:
        if source < len(scope):
            return scope[source].row_to_dict(lid)
        batch, row = mt_refs[lid]
        return memtable.materialize_row(batch, row)

    project = project_record_fn or _projection(output_fields, pk_field, vector_field)
    results = []
    for found in candidates:
        found.sort()
        hits = []
        for distance, source, lid in found[:top_k]:
            record = record_of(source, lid)
            pk = (
                record[pk_field]
                if pk_field in record
                else (scope[source].pks[lid] if source < len(scope) else mt_pks[lid])
            )
            hits.append({"id": pk, "distance": distance, "entity": project(record)})
        results.append(hits)
    return results


def _projection(
    output_fields: list[str] | None, pk_field: str, vector_field: str
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if output_fields is None:
        return lambda record: {k: v for k, v in record.items() if k not in (pk_field, vector_field)}
    keep = set(output_fields) - {pk_field}
    return lambda record: {k: record[k] for k in keep if k in record}


# ── sparse (BM25) search ─────────────────────────────────────────────────────────────────────


def search_sparse(
    self: Any,
    query_vectors: list[Any],
    vector_field: str,
    top_k: int,
    metric_type: str,
    partition_names: list[str] | None,
    expr: str | None,
    output_fields: list[str] | None,
    timezone: str | None = None,
) -> list[list[dict[str, Any]]]:
    """`Collection._search_sparse`, same arguments and answers: each sealed segment's sparse
    index (built once, kept on the segment) and the memtable's, over the live rows that pass
    the filter; one hit per key, its newest version; the best `top_k`."""
    from milvus_lite.constants import ALL_PARTITIONS
    from milvus_lite.engine.projection import build_projection_plan, project_record
    from milvus_lite.search.indexed_filter import evaluate_segment_filter

    plan = build_projection_plan(output_fields, self._schema, api_kind="search")
    spec = self._index_specs.get(vector_field)
    params = spec.build_params if spec else {}
    queries = self._prepare_sparse_queries(query_vectors, vector_field)
    compiled = self._compile_filter(expr, timezone=timezone) if expr else None
    indexed_plan = self._indexed_filter_plan(compiled)
    snapshot, delta = self._read_snapshot()
    pending = self._memtable.delete_index_snapshot()
    stored = [segment for segment in snapshot if segment.num_rows > 0]
    versions = sealed_versions(stored)
    in_memtable = [(pk, position[2]) for pk, position in self._memtable.pk_index_snapshot()]
    live, _ = live_rows(
        versions,
        [pk for pk, _ in in_memtable],
        [seq for _, seq in in_memtable],
        delta.is_deleted,
        _tombstones(delta),
        {},
    )
    # A deletion still in the memtable hides older versions in its partition (or in all).
    for pk, (deleted_at, partition) in pending.items():
        for row in versions.rows_of(pk):
            number = int(np.searchsorted(versions.offsets, row, side="right")) - 1
            if deleted_at > versions.seqs[row] and partition in (ALL_PARTITIONS, stored[number].partition):
                live[row] = False

    wanted = set(partition_names) if partition_names else None
    # Per query: (distance, key, sequence number, record or (segment number, row)).
    candidates: list[list[tuple[float, Any, int, Any]]] = [[] for _ in queries]
    for number, segment in enumerate(stored):
        if (wanted is not None and segment.partition not in wanted) or segment.table is None:
            continue
        start = int(versions.offsets[number])
        mask = live[start : start + segment.num_rows]
        if compiled is not None:
            mask = mask & evaluate_segment_filter(segment, compiled, indexed_plan)
        if not mask.any():
            continue
        index = _segment_sparse_index(segment, vector_field, metric_type, params)
        _collect(
            candidates,
            index,
            queries,
            top_k,
            mask,
            lambda lid, number=number, start=start: (
                stored[number].pks[lid],
                int(versions.seqs[start + lid]),
                (number, lid),
            ),
        )
    _collect_memtable(
        self, candidates, queries, top_k, vector_field, metric_type, params, partition_names, delta, versions, compiled
    )

    def entity(source: Any) -> dict[str, Any]:
        if isinstance(source, dict):
            return project_record(source, self._schema, plan)
        table = stored[source[0]].table
        record = {
            name: table.column(name)[source[1]].as_py()
            for name in table.column_names
            if name not in ("_seq", "_partition")
        }
        return project_record(record, self._schema, plan)

    results = []
    for found in candidates:
        newest: dict[Any, tuple[int, tuple[float, Any, int, Any]]] = {}
        for candidate in found:
            held = newest.get(candidate[1])
            if held is None or candidate[2] > held[0]:
                newest[candidate[1]] = (candidate[2], candidate)
        ranked = sorted((candidate for _, candidate in newest.values()), key=lambda c: c[0])[:top_k]
        results.append([{"id": pk, "distance": d, "entity": entity(source)} for d, pk, _, source in ranked])
    return results


def _segment_sparse_index(segment: Any, field: str, metric_type: str, params: dict[str, Any]) -> Any:
    """The segment's sparse index for `field`, built on first use and kept on the segment."""
    from milvus_lite.analyzer.sparse import bytes_to_sparse
    from milvus_lite.index.sparse_factory import create_sparse_index, sparse_index_matches

    index = segment.sparse_indexes.get(field)
    if not sparse_index_matches(index, metric_type, params):
        vectors = [
            bytes_to_sparse(raw) if isinstance(raw, bytes) else (raw or {})
            for raw in segment.table.column(field).to_pylist()
        ]
        index = create_sparse_index(metric_type, params)
        index.build(vectors)
        segment.sparse_indexes[field] = index
    return index


def _collect(
    candidates: list[list[tuple[float, Any, int, Any]]],
    index: Any,
    queries: list[Any],
    top_k: int,
    mask: np.ndarray | None,
    describe: Callable[[int], tuple[Any, int, Any]],
) -> None:
    from milvus_lite.index.sparse_factory import _search_prepared_sparse_index

    ids, distances = _search_prepared_sparse_index(index, queries, top_k, valid_mask=mask)
    for q, found in enumerate(candidates):
        for lid, distance in zip(ids[q].tolist(), distances[q].tolist(), strict=True):
            if lid < 0:
                break
            pk, seq, source = describe(lid)
            found.append((float(distance), pk, seq, source))


def _collect_memtable(
    collection: Any,
    candidates: list[list[tuple[float, Any, int, Any]]],
    queries: list[Any],
    top_k: int,
    field: str,
    metric_type: str,
    params: dict[str, Any],
    partition_names: list[str] | None,
    delta: Any,
    versions: SealedVersions,
    compiled: Any,
) -> None:
    """The memtable's rows (few, and changing: indexed for this search alone)."""
    from milvus_lite.analyzer.sparse import bytes_to_sparse
    from milvus_lite.index.sparse_factory import create_sparse_index
    from milvus_lite.search.filter.eval.python_backend import _eval_row

    rows = [
        (pk, seq, record)
        for pk, seq, record in collection._memtable.active_record_snapshots(partition_names=partition_names)
        if not delta.is_deleted(pk, seq) and versions.newest_seq(pk) <= seq
    ]
    if not rows:
        return
    vectors = [
        bytes_to_sparse(r[2].get(field)) if isinstance(r[2].get(field), bytes) else (r[2].get(field) or {})
        for r in rows
    ]
    passing = np.fromiter(
        (compiled is None or bool(_eval_row(compiled.ast, record)) for _, _, record in rows),
        dtype=bool,
        count=len(rows),
    )
    index = create_sparse_index(metric_type, params)
    index.build(vectors, valid_mask=passing)
    _collect(candidates, index, queries, top_k, None, lambda lid: (rows[lid][0], int(rows[lid][1]), rows[lid][2]))


# ── BM25 ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Postings:
    """A BM25 index's posting lists as arrays: for each word, the rows holding it and how often."""

    source: dict[int, Any]  # the index's own posting lists these were made from
    rows: dict[int, np.ndarray]
    counts: dict[int, np.ndarray]


_postings: weakref.WeakKeyDictionary[Any, Postings] = weakref.WeakKeyDictionary()


def _postings_of(index: Any) -> Postings:
    # Made again when the index is (re)built: a build gives it new posting lists.
    found = _postings.get(index)
    if found is None or found.source is not index._posting_lists:
        rows, counts = {}, {}
        for word, posting in index._posting_lists.items():
            pairs = np.asarray(posting, dtype=np.float64).reshape(-1, 2)
            rows[word], counts[word] = pairs[:, 0].astype(np.int64), pairs[:, 1]
        found = _postings[index] = Postings(index._posting_lists, rows, counts)
    return found


def bm25_search(
    self: Any, query_sparse_vectors: list[dict[int, float]], top_k: int, valid_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`SparseInvertedIndex.search`: the same BM25 (k1, b, idf) scored a posting list at a time.
    Returns (rows, -score), best first, padded with -1 / +inf."""
    from milvus_lite.index.sparse_common import empty_results, validate_mask

    valid_mask = validate_mask(valid_mask, len(self._doc_lengths))
    ids, distances = empty_results(len(query_sparse_vectors), top_k)
    if self.doc_count == 0 or top_k == 0:
        return ids, distances
    postings = _postings_of(self)
    lengths = np.asarray(self._doc_lengths, dtype=np.float64)
    average = self.avgdl if self.avgdl > 0 else 1.0
    documents, k1, b = self.doc_count, self.k1, self.b
    for q, words in enumerate(query_sparse_vectors):
        scores = np.zeros(len(lengths), dtype=np.float64)
        touched = np.zeros(len(lengths), dtype=bool)
        for word, weight in (words or {}).items():
            rows = postings.rows.get(word)
            if rows is None or not len(rows):
                continue
            counts = postings.counts[word]
            if valid_mask is not None:
                keep = valid_mask[rows]
                rows, counts = rows[keep], counts[keep]
            df = self._df[word]
            idf = math.log((documents - df + 0.5) / (df + 0.5) + 1.0)
            norm = counts * (k1 + 1.0) / (counts + k1 * (1.0 - b + b * lengths[rows] / average))
            scores[rows] += idf * norm * weight  # a row appears once in a word's posting list
            touched[rows] = True
        _best(np.flatnonzero(touched), scores, top_k, ids[q], distances[q])
    return ids, distances


def _best(rows: np.ndarray, scores: np.ndarray, top_k: int, ids: np.ndarray, distances: np.ndarray) -> None:
    """The `top_k` best-scored `rows` into `ids` / `distances` (-score), best first; equal
    scores in row order."""
    if not len(rows):
        return
    count = min(top_k, len(rows))
    chosen = rows if count == len(rows) else rows[np.argpartition(-scores[rows], count - 1)[:count]]
    chosen = chosen[np.lexsort((chosen, -scores[chosen]))]
    ids[:count] = chosen
    distances[:count] = -scores[chosen]
