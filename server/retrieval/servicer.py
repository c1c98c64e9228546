"""RetrievalService, MemoryService and DocumentService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2
from relais.v1 import retrieval_pb2, retrieval_pb2_grpc

from server.convert import timestamp
from server.errors import FieldViolation, ValidationFailed
from server.interceptors.call import current_principal
from server.messages import say
from server.paging import page_window
from server.retrieval.service import Found, KnowledgeBase, ReindexReport
from server.retrieval.views import DocumentView, MemoryView

# Pieces a download is sent in.
DOWNLOAD_PIECE = 64 * 1024

ENTITY_TYPES = {
    retrieval_pb2.ENTITY_TYPE_UNSPECIFIED: "",
    retrieval_pb2.ENTITY_TYPE_AGENT: "agent",
    retrieval_pb2.ENTITY_TYPE_CHAT: "chat",
    retrieval_pb2.ENTITY_TYPE_USER: "user",
}
ENTITY_ENUMS = {name: value for value, name in ENTITY_TYPES.items() if name}


def passage_message(found: Found) -> retrieval_pb2.Passage:
    message = retrieval_pb2.Passage(
        text=found.text,
        score=found.score,
        source=retrieval_pb2.SourceSpan(
            path=found.path, sha256=found.sha256, chunk_id=found.chunk_id, start=found.start, end=found.end
        ),
    )
    if found.document_id is not None:
        message.source.document_id = found.document_id
    return message


def document_message(document: DocumentView) -> retrieval_pb2.Document:
    message = retrieval_pb2.Document(
        id=document.id,
        filename=document.filename,
        file_size=document.file_size,
        mime_type=document.mime_type,
        entity_type=ENTITY_ENUMS.get(document.entity_type, retrieval_pb2.ENTITY_TYPE_UNSPECIFIED),
        uploaded_at=timestamp(document.created_at),
        sha256=document.sha256,
        chunk_count=document.chunk_count,
    )
    if document.entity_id is not None:
        message.entity_id = document.entity_id
        if document.entity_type == "chat":
            message.conversation_id = document.entity_id
    return message


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _memory_fields(memory: MemoryView) -> dict[str, Any]:
    """What MemoryEntry and MemoryMatch share (agent_id only when set: it is optional)."""
    fields: dict[str, Any] = {
        "id": memory.id,
        "content": memory.content,
        "metadata": _struct(memory.metadata),
        "created_at": timestamp(memory.created_at),
    }
    if memory.agent_id is not None:
        fields["agent_id"] = memory.agent_id
    return fields


def memory_message(memory: MemoryView) -> retrieval_pb2.MemoryEntry:
    return retrieval_pb2.MemoryEntry(**_memory_fields(memory))


def _report_event(report: ReindexReport, sequence: int) -> retrieval_pb2.ReindexEvent:
    if not report.finished:
        return retrieval_pb2.ReindexEvent(
            sequence=sequence,
            progress=retrieval_pb2.ReindexProgress(
                files_total=report.files_total, files_done=report.files_done, path=report.path, chunks=report.chunks
            ),
        )
    return retrieval_pb2.ReindexEvent(
        sequence=sequence,
        done=retrieval_pb2.ReindexResult(
            indexed=report.indexed,
            unchanged=report.unchanged,
            removed=report.removed,
            chunks=report.chunks,
            failed=[retrieval_pb2.IndexFailure(path=path, reason=reason) for path, reason in report.failed],
            seconds=report.seconds,
        ),
    )


class RetrievalServicer(retrieval_pb2_grpc.RetrievalServiceServicer):
    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._knowledge = knowledge

    async def Reindex(
        self, request: retrieval_pb2.ReindexRequest, context: Any
    ) -> AsyncIterator[retrieval_pb2.ReindexEvent]:
        full = request.full if request.HasField("full") else True
        sequence = 0
        async for report in self._knowledge.reindex(path=request.path, full=full):
            sequence += 1
            yield _report_event(report, sequence)

    async def Query(self, request: retrieval_pb2.QueryRequest, context: Any) -> retrieval_pb2.QueryResponse:
        found = await self._knowledge.query_corpus(request.query, request.top_k)
        return retrieval_pb2.QueryResponse(results=[passage_message(passage) for passage in found])


class MemoryServicer(retrieval_pb2_grpc.MemoryServiceServicer):
    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._knowledge = knowledge

    async def AddMemory(self, request: retrieval_pb2.AddMemoryRequest, context: Any) -> retrieval_pb2.MemoryEntry:
        metadata = json_format.MessageToDict(request.metadata) if request.HasField("metadata") else {}
        memory = await self._knowledge.remember(current_principal(), request.content, metadata)
        return memory_message(memory)

    async def SearchMemory(
        self, request: retrieval_pb2.SearchMemoryRequest, context: Any
    ) -> retrieval_pb2.SearchMemoryResponse:
        matches = await self._knowledge.recall(current_principal(), request.q, request.limit)
        results = [retrieval_pb2.MemoryMatch(**_memory_fields(memory), score=score) for memory, score in matches]
        return retrieval_pb2.SearchMemoryResponse(query=request.q, results=results)

    async def DeleteMemory(
        self, request: retrieval_pb2.DeleteMemoryRequest, context: Any
    ) -> retrieval_pb2.DeleteMemoryResponse:
        await self._knowledge.forget_memory(current_principal(), request.id)
        return retrieval_pb2.DeleteMemoryResponse(message=say("memory_deleted", id=request.id))


class DocumentServicer(retrieval_pb2_grpc.DocumentServiceServicer):
    def __init__(self, knowledge: KnowledgeBase) -> None:
        self._knowledge = knowledge

    async def UploadDocument(
        self, request: retrieval_pb2.UploadDocumentRequest, context: Any
    ) -> retrieval_pb2.Document:
        if not request.HasField("file"):
            raise ValidationFailed([FieldViolation(field="file", message="is required")])
        document = await self._knowledge.upload(
            current_principal(),
            filename=request.file.filename,
            data=request.file.data,
            entity_type=ENTITY_TYPES.get(request.entity_type, ""),
            entity_id=request.entity_id,
            conversation_id=request.conversation_id.strip(),
        )
        return document_message(document)

    async def ListDocuments(
        self, request: retrieval_pb2.ListDocumentsRequest, context: Any
    ) -> retrieval_pb2.ListDocumentsResponse:
        offset, limit = page_window(skip=0, offset=request.offset, limit=request.limit)
        page = await self._knowledge.list_documents(
            current_principal(),
            entity_type=ENTITY_TYPES.get(request.entity_type, ""),
            entity_id=request.entity_id,
            limit=limit,
            offset=offset,
        )
        return retrieval_pb2.ListDocumentsResponse(
            documents=[document_message(document) for document in page.items], **page.offset_fields()
        )

    async def GetDocument(
        self, request: retrieval_pb2.GetDocumentRequest, context: Any
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        document, stored = await self._knowledge.get_document(current_principal(), request.document_id)
        quoted = urllib.parse.quote(document.filename, safe="")
        await context.send_initial_metadata(
            [
                ("content-disposition", f"attachment; filename*=UTF-8''{quoted}"),
                ("content-length", str(document.file_size)),
            ]
        )
        handle = await asyncio.to_thread(open, stored, "rb")
        try:
            while piece := await asyncio.to_thread(handle.read, DOWNLOAD_PIECE):
                yield httpbody_pb2.HttpBody(content_type=document.mime_type, data=piece)
        finally:
            handle.close()

    async def DeleteDocument(
        self, request: retrieval_pb2.DeleteDocumentRequest, context: Any
    ) -> retrieval_pb2.DeleteDocumentResponse:
        await self._knowledge.delete_document(current_principal(), request.document_id)
        return retrieval_pb2.DeleteDocumentResponse(message=say("document_deleted", id=request.document_id))
