"""Retrieval: documents, memory and the local corpus on Milvus, every passage citing its span.

models.py       the documents, memories and corpus_files tables (the truth the vector store follows)
extract.py      what a file is, judged by its bytes, and its text (PDF, DOCX, text; images kept as is)
chunking.py     text cut into passages with exact character offsets
embeddings.py   text to unit vectors: all-MiniLM-L6-v2 in-process, or a model on Triton
store.py        the Milvus collection: dense vectors, BM25, RRF fusion, owner/scope/entity filters
lite.py         Milvus Lite in a child process, the embedded default
service.py      KnowledgeBase: uploads, memory, corpus indexing, passages for chat replies
servicer.py     RetrievalService, MemoryService and DocumentService over gRPC
domain.py       how the server assembles them
"""
