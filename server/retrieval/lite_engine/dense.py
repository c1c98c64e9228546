"""Dense search: Milvus Lite's `execute_search_with_index` over versions.py's live rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from server.retrieval.lite_engine.versions import live_rows, sealed_deletions, sealed_versions


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
    queries = np.asarray(query_vectors, dtype=np.float32)
    queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
    if len(queries) == 0 or top_k <= 0:
        return [[] for _ in range(len(queries))]
    wanted = set(partition_names) if partition_names else None
    scope = [s for s in segments if s.num_rows > 0 and (wanted is None or s.partition in wanted)]
    snapshot = memtable.to_search_snapshot(
        vector_field=vector_field, partition_names=partition_names, include_table=compiled_filter is not None
    )
    if not scope and not snapshot[0]:
        return [[] for _ in range(len(queries))]
    search = _DenseSearch(queries, top_k, metric_type, vector_field, search_params, scope, memtable, snapshot)
    search.recall(delta_index, compiled_filter, indexed_filter_plan)
    return search.hits(project_record_fn or _projection(output_fields, pk_field, vector_field), pk_field)


class _DenseSearch:
    """One dense search: candidates from every source, then the best, materialised."""

    def __init__(
        self,
        queries: np.ndarray,
        top_k: int,
        metric_type: str,
        field: str,
        params: dict[str, Any] | None,
        scope: list[Any],
        memtable: Any,
        snapshot: tuple[Any, ...],
    ) -> None:
        self.queries, self.top_k, self.metric_type, self.field, self.params = queries, top_k, metric_type, field, params
        self.scope, self.memtable = scope, memtable
        self.mt_pks, self.mt_seqs, self.mt_vectors, self.mt_refs, self.mt_table = snapshot
        # Per query: (distance, source (a segment's number, or len(scope) for the memtable), row).
        self.candidates: list[list[tuple[float, int, int]]] = [[] for _ in range(len(queries))]

    def recall(self, delta_index: Any, compiled_filter: Any, indexed_filter_plan: Any) -> None:
        from milvus_lite.search.filter import evaluate_mask
        from milvus_lite.search.indexed_filter import evaluate_segment_filter

        versions = sealed_versions(self.scope)
        pending = {pk: entry[0] for pk, entry in self.memtable.delete_index_snapshot().items()}
        sealed, in_memtable = live_rows(
            versions, self.mt_pks, self.mt_seqs, delta_index.is_deleted, sealed_deletions(delta_index), pending
        )
        for number, segment in enumerate(self.scope):
            start = int(versions.offsets[number])
            mask = sealed[start : start + segment.num_rows]
            vectors, has_vector = segment.vector_data(self.field)
            if compiled_filter is not None:
                mask = mask & evaluate_segment_filter(segment, compiled_filter, indexed_filter_plan).astype(bool)
            if has_vector is not None:
                mask = mask & np.asarray(has_vector, dtype=bool)
            self._search(number, vectors, mask, segment.indexes.get(self.field))
        if self.mt_pks:
            if compiled_filter is not None and self.mt_table is not None:
                in_memtable = in_memtable & evaluate_mask(compiled_filter, self.mt_table).astype(bool)
            self._search(len(self.scope), self.mt_vectors, in_memtable, None)

    def _search(self, source: int, vectors: np.ndarray, mask: np.ndarray, index: Any) -> None:
        from milvus_lite.index.brute_force import BruteForceIndex

        if not mask.any():
            return
        index = index if index is not None else BruteForceIndex.build(vectors, self.metric_type)
        valid = None if mask.all() else mask
        ids, distances = index.search(self.queries, self.top_k, valid_mask=valid, params=self.params)
        for found, row_ids, row_distances in zip(self.candidates, ids.tolist(), distances.tolist(), strict=True):
            for lid, distance in zip(row_ids, row_distances, strict=True):
                if lid < 0:
                    break
                found.append((float(distance), source, lid))

    def hits(self, project: Callable[[dict[str, Any]], dict[str, Any]], pk_field: str) -> list[list[dict[str, Any]]]:
        results = []
        for found in self.candidates:
            found.sort()  # by distance, then source and row, for ties
            hits = []
            for distance, source, lid in found[: self.top_k]:
                if source < len(self.scope):
                    record, pk = dict(self.scope[source].row_to_dict(lid)), self.scope[source].pks[lid]
                else:
                    record, pk = dict(self.memtable.materialize_row(*self.mt_refs[lid])), self.mt_pks[lid]
                hits.append({"id": record.get(pk_field, pk), "distance": distance, "entity": project(record)})
            results.append(hits)
        return results


def _projection(
    output_fields: list[str] | None, pk_field: str, vector_field: str
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if output_fields is None:
        return lambda record: {k: v for k, v in record.items() if k not in (pk_field, vector_field)}
    keep = set(output_fields) - {pk_field}
    return lambda record: {k: record[k] for k in keep if k in record}
