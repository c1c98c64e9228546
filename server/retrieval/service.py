"""Retrieval: documents, memories and the corpus, indexed into one passage store.

    knowledge = KnowledgeBase(database, store, embedder, settings=RetrievalSettings(...))
    document = await knowledge.upload(principal, filename="guide.pdf", data=..., entity_type="agent", entity_id=3)
    found = await knowledge.for_reply(principal, chat_id=7, agent_id=3, files=[], query="...")

KnowledgeBase is the retrieval domain's service: one object over one core (core.py: the rows,
the store, the embedder, indexing and reader-filtered search), its concerns in their own modules:
documents.py, memories.py, corpus.py and context.py (passages for replies, the search tool).
Their SQL is in repository.py; store.py is the passage store's (Milvus) side.
"""

from __future__ import annotations

from server.retrieval.context import ReplyContext
from server.retrieval.core import Found, RetrievalSettings, clean_filename, write_atomically
from server.retrieval.corpus import Corpus, ReindexReport
from server.retrieval.documents import DocumentLibrary
from server.retrieval.memories import MemoryBank

__all__ = ["Found", "KnowledgeBase", "ReindexReport", "RetrievalSettings", "clean_filename", "write_atomically"]


class KnowledgeBase(DocumentLibrary, MemoryBank, Corpus, ReplyContext):
    """Documents, memories, the corpus and reply context over one passage store."""
