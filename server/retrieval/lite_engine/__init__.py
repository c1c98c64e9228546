"""Milvus Lite's searches without a Python step per stored passage.

Milvus Lite 3.2 runs its engine in Python. Its indexes are fine (FAISS HNSW answers a dense
query in a fraction of a millisecond at 100,000 passages), but around them, every search walks
every stored row in Python to decide which rows are live (the newest version of each primary
key, not deleted), and its BM25 scores every posting of every query word in Python: a profile
of the Lite child at 20,000 passages put 48% of a dense search in those loops and 2.4% in FAISS,
and a search cost ~150 ms at 100,000 passages, a hybrid one ~1 s.

This package gives the same answers with NumPy:

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

import logging

log = logging.getLogger("relais.retrieval")

# The release whose internals this module replaces, and was checked against.
MILVUS_LITE_RELEASE = "3.2.2"


def install() -> bool:
    """Replace Milvus Lite's search loops with this module's; False (and nothing changed) on
    a release other than the one they were written for."""
    import milvus_lite
    from milvus_lite.engine import collection
    from milvus_lite.index.sparse_inverted import SparseInvertedIndex

    from server.retrieval.lite_engine.bm25 import bm25_search
    from server.retrieval.lite_engine.dense import search_with_index
    from server.retrieval.lite_engine.sparse import search_sparse

    if milvus_lite.__version__ != MILVUS_LITE_RELEASE:
        log.warning(
            "Milvus Lite %s is not %s: its own search paths stay in place (slower at scale)",
            milvus_lite.__version__,
            MILVUS_LITE_RELEASE,
        )
        return False
    collection.execute_search_with_index = search_with_index
    collection.Collection._search_sparse = search_sparse
    SparseInvertedIndex.search = bm25_search
    return True
