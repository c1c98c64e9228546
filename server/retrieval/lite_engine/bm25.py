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
    """`SparseInvertedIndex.search`: the same BM25 (k1, b, idf), a posting list at a time, with
    Lite's float32 arithmetic in Lite's order (so the same scores to the bit) and its order among
    equal scores (the row first scored first). Returns (rows, -score), best first, padded."""
    from milvus_lite.index.sparse_common import empty_results, validate_mask

    valid_mask = validate_mask(valid_mask, len(self._doc_lengths))
    ids, distances = empty_results(len(query_sparse_vectors), top_k)
    if self.doc_count == 0 or top_k == 0:
        return ids, distances
    postings = _postings_of(self)
    lengths = np.asarray(self._doc_lengths, dtype=np.float32)
    f32 = np.float32
    average = f32(self.avgdl if self.avgdl > 0 else 1.0)
    documents, k1, b = self.doc_count, self.k1, self.b
    for q, words in enumerate(query_sparse_vectors):
        scores = np.zeros(len(lengths), dtype=np.float32)
        # Which query word scored each row first (-1: none): Lite ranks equal scores that way.
        first = np.full(len(lengths), -1, dtype=np.int64)
        for number, (word, weight) in enumerate((words or {}).items()):
            rows = postings.rows.get(word)
            if rows is None or not len(rows):
                continue
            counts = postings.counts[word]
            if valid_mask is not None:
                keep = valid_mask[rows]
                rows, counts = rows[keep], counts[keep]
            df = self._df[word]
            idf = math.log((documents - df + 0.5) / (df + 0.5) + 1.0)
            # (tf (k1 + 1)) / (tf + k1 (1 - b + b dl / avgdl)), as Lite evaluates it.
            norm = (counts * (k1 + 1.0)).astype(np.float32) / (
                counts.astype(np.float32) + f32(k1) * (f32(1.0 - b) + f32(b) * lengths[rows] / average)
            )
            scores[rows] += f32(idf) * norm * f32(weight)  # a row appears once in a word's posting list
            first[rows[first[rows] < 0]] = number
        _best(np.flatnonzero(first >= 0), scores, first, top_k, ids[q], distances[q])
    return ids, distances


def _best(
    rows: np.ndarray, scores: np.ndarray, first: np.ndarray, top_k: int, ids: np.ndarray, distances: np.ndarray
) -> None:
    """The `top_k` best-scored `rows` into `ids` / `distances` (-score), best first; among equal
    scores, by the query word that scored them first, then by row (Lite's order)."""
    if not len(rows):
        return
    count = min(top_k, len(rows))
    if count < len(rows):  # keep every row tied with the last one kept, then order them
        cut = np.partition(-scores[rows], count - 1)[count - 1]
        rows = rows[-scores[rows] <= cut]
    chosen = rows[np.lexsort((rows, first[rows], -scores[rows]))][:count]
    ids[:count] = chosen
    distances[:count] = -scores[chosen]
