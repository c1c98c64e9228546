"""Sparse (BM25) search: Milvus Lite's `Collection._search_sparse` over versions.py's live rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from server.retrieval.lite_engine.versions import SealedVersions, live_rows, sealed_deletions, sealed_versions


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
    index (kept on the segment) and the memtable's, over the live rows passing the filter."""
    from milvus_lite.search.indexed_filter import evaluate_segment_filter

    params = spec.build_params if (spec := self._index_specs.get(vector_field)) else {}
    queries = self._prepare_sparse_queries(query_vectors, vector_field)
    compiled = self._compile_filter(expr, timezone=timezone) if expr else None
    indexed_plan = self._indexed_filter_plan(compiled)
    snapshot, delta = self._read_snapshot()
    stored = [segment for segment in snapshot if segment.num_rows > 0]
    versions = sealed_versions(stored)
    live = _sparse_live_rows(self._memtable, stored, versions, delta)
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
        if mask.any():
            index = _segment_sparse_index(segment, vector_field, metric_type, params)
            _collect(candidates, index, queries, top_k, mask, _sealed_row(stored, versions, number))
    _collect_memtable(
        self, candidates, queries, top_k, vector_field, metric_type, params, partition_names, delta, versions, compiled
    )
    return _sparse_hits(self, candidates, stored, top_k, output_fields)


def _sparse_live_rows(memtable: Any, stored: list[Any], versions: SealedVersions, delta: Any) -> np.ndarray:
    """The sealed rows a sparse search may return: the newest version of their key (the
    memtable's included) that no deletion hides. A deletion still in the memtable hides older
    versions in its partition (or in all of them)."""
    from milvus_lite.constants import ALL_PARTITIONS

    in_memtable = [(pk, position[2]) for pk, position in memtable.pk_index_snapshot()]
    pks, seqs = [pk for pk, _ in in_memtable], [seq for _, seq in in_memtable]
    live, _ = live_rows(versions, pks, seqs, delta.is_deleted, sealed_deletions(delta), {})
    for pk, (deleted_at, partition) in memtable.delete_index_snapshot().items():
        for row in versions.rows_of(pk):
            number = int(np.searchsorted(versions.offsets, row, side="right")) - 1
            if deleted_at > versions.seqs[row] and partition in (ALL_PARTITIONS, stored[number].partition):
                live[row] = False
    return live


def _sparse_hits(
    collection: Any,
    candidates: list[list[tuple[float, Any, int, Any]]],
    stored: list[Any],
    top_k: int,
    output_fields: list[str] | None,
) -> list[list[dict[str, Any]]]:
    """Per query, one candidate per key (its newest version), the best `top_k`, materialised."""
    from milvus_lite.engine.projection import build_projection_plan, project_record

    plan = build_projection_plan(output_fields, collection._schema, api_kind="search")

    def entity(source: Any) -> dict[str, Any]:
        if not isinstance(source, dict):
            table = stored[source[0]].table
            source = {
                name: table.column(name)[source[1]].as_py()
                for name in table.column_names
                if name not in ("_seq", "_partition")
            }
        return dict(project_record(source, collection._schema, plan))

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


def _sealed_row(stored: list[Any], versions: SealedVersions, number: int) -> Callable[[int], tuple[Any, int, Any]]:
    """A sealed segment's row as a candidate: its key, its sequence number, where it is."""
    start = int(versions.offsets[number])
    return lambda lid: (stored[number].pks[lid], int(versions.seqs[start + lid]), (number, lid))


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
