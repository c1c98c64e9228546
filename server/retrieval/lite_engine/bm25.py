"""BM25 scored a posting list at a time, in place of Milvus Lite's posting-by-posting loop."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np


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
