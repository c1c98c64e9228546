"""The caller's own knowledge: documents and corpus (with citations), memories, conversations.

Each tool calls the owning domain's service with the caller's principal, so a tool sees what
the caller would see through the API and nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from server.auth import Principal
from server.tools.builtin.base import BuiltinTool, Runner, ToolError, schema
from server.tools.registry import CallerContext

QUERY = {"type": "string", "minLength": 1, "maxLength": 2000}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}


class Citation(Protocol):
    text: str
    score: float
    path: str
    sha256: str
    chunk_id: str
    start: int
    end: int
    document_id: int | None


class Remembered(Protocol):
    """A stored memory as the retrieval domain gives it (server.retrieval.views.MemoryView)."""

    @property
    def id(self) -> int: ...

    @property
    def content(self) -> str: ...

    @property
    def metadata(self) -> dict[str, Any]: ...


class Knowledge(Protocol):
    """What the retrieval domain offers the tools (server.retrieval.service.KnowledgeBase)."""

    async def search(
        self, principal: Principal, query: str, *, limit: int, documents: bool, corpus: bool
    ) -> list[Any]: ...

    async def remember(self, principal: Principal, content: str, metadata: dict[str, Any]) -> Remembered: ...

    async def recall(self, principal: Principal, query: str, limit: int) -> Sequence[tuple[Remembered, float]]: ...


class Conversations(Protocol):
    """What the chats domain offers the tools (server.chats.service.ChatService)."""

    async def search_messages(self, principal: Principal, query: str, *, limit: int) -> list[dict[str, Any]]: ...


def citation(index: int, found: Citation) -> dict[str, Any]:
    return {
        "ref": f"[{index}]",
        "text": found.text,
        "score": round(found.score, 4),
        "source": {
            "path": found.path,
            "document_id": found.document_id,
            "sha256": found.sha256,
            "chunk_id": found.chunk_id,
            "start": found.start,
            "end": found.end,
        },
    }


def _search_tool(
    *, name: str, description: str, category: str, run: Runner, more_arguments: dict[str, Any] | None = None
) -> BuiltinTool:
    """A tool that answers at most `limit` results for a `query` (narrowed by `more_arguments`)."""
    parameters = schema({"query": QUERY, "limit": LIMIT, **(more_arguments or {})}, required=["query"])
    return BuiltinTool(name=name, description=description, parameters=parameters, category=category, run=run)


def _limit(arguments: dict[str, Any]) -> int:
    return int(arguments.get("limit", LIMIT["default"]))


def knowledge_tools(knowledge: Knowledge, conversations: Conversations) -> list[BuiltinTool]:
    return [*_document_tools(knowledge), *_memory_tools(knowledge), *_conversation_tools(conversations)]


def _document_tools(knowledge: Knowledge) -> list[BuiltinTool]:
    async def search_documents(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        scope = arguments.get("scope", "all")
        found = await knowledge.search(
            context.principal,
            arguments["query"],
            limit=_limit(arguments),
            documents=scope in ("all", "documents"),
            corpus=scope in ("all", "corpus"),
        )
        return {"count": len(found), "results": [citation(index, passage) for index, passage in enumerate(found, 1)]}

    scope = {"type": "string", "enum": ["all", "documents", "corpus"], "default": "all"}
    return [
        _search_tool(
            name="search_documents",
            description="Search the caller's uploaded documents and the shared corpus; answers passages "
            "with citations (path, character span, sha256).",
            category="knowledge",
            run=search_documents,
            more_arguments={"scope": scope},
        )
    ]


def _memory_tools(knowledge: Knowledge) -> list[BuiltinTool]:
    async def memory_store(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        memory = await knowledge.remember(context.principal, arguments["content"], arguments.get("metadata", {}))
        return {"id": memory.id, "stored": True, "content": memory.content}

    async def memory_search(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        found = await knowledge.recall(context.principal, arguments["query"], _limit(arguments))
        results = [
            {"id": memory.id, "content": memory.content, "metadata": memory.metadata, "score": round(score, 4)}
            for memory, score in found
        ]
        return {"count": len(results), "results": results}

    content = {"type": "string", "minLength": 1, "maxLength": 8000}
    metadata = {"type": "object", "description": "Free-form labels, e.g. {'project': 'jsr'}"}
    return [
        BuiltinTool(
            name="memory_store",
            description="Remember a fact for the caller (long-term memory, searchable by meaning).",
            parameters=schema({"content": content, "metadata": metadata}, required=["content"]),
            category="memory",
            run=memory_store,
            read_only=False,
        ),
        _search_tool(
            name="memory_search",
            description="The caller's remembered facts closest in meaning to a query, best first.",
            category="memory",
            run=memory_search,
        ),
    ]


def _conversation_tools(conversations: Conversations) -> list[BuiltinTool]:
    async def search_conversations(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        if context.principal.user_id is None:
            raise ToolError("Conversations belong to user accounts")
        found = await conversations.search_messages(context.principal, arguments["query"], limit=_limit(arguments))
        return {"count": len(found), "results": [_dated(hit) for hit in found]}

    return [
        _search_tool(
            name="search_conversations",
            description="Find the caller's earlier conversation messages containing some text.",
            category="conversations",
            run=search_conversations,
        )
    ]


def _dated(hit: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in hit.items()}
