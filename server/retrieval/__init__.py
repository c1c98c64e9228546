"""Retrieval: documents, memory and the local corpus on Milvus, every passage citing its span.

models.py       the documents, memories and corpus_files tables (the truth the vector store follows)
views.py        DocumentView, MemoryView: documents and memories as servicers and other domains get them
extract.py      what a file is, judged by its bytes, and its text (PDF, DOCX, text; images kept as is)
chunking.py     text cut into passages with exact character offsets
embeddings.py   text to unit vectors: all-MiniLM-L6-v2 in-process, or a model on Triton
onnx_encoder.py the in-process model exported to ONNX Runtime, for short requests (a query)
store.py        the Milvus collection: dense vectors, BM25, RRF fusion; PassageFilter in Milvus syntax
stopwords.py    the French and English function words BM25 leaves out
lite.py         Milvus Lite in a child process, the embedded default
lite_child.py   that child's entry point: Milvus Lite's server with lite_engine/ in place
lite_engine/    Milvus Lite's dense and BM25 searches without a Python step per stored passage
core.py         the rows, the store and the embedder: indexing under fresh keys, reader-filtered search
documents.py    uploads, downloads, deletions (and what deleted agents, chats and users leave)
memories.py     memories kept and recalled, and what a learning agent keeps of each exchange
corpus.py       the corpus directory indexed on demand, and /rag/query
context.py      passages for a chat reply, and the search_documents tool
service.py      KnowledgeBase: the service, all of the above over one core
servicer.py     RetrievalService, MemoryService and DocumentService over gRPC
domain.py       how the server assembles them
"""
