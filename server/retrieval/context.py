"""What a reader gets: the passages for a chat reply, and the search_documents tool's results."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from server.agents.access import usable_agent
from server.auth import Principal
from server.retrieval.core import (
    CORPUS,
    DOCUMENT,
    MAX_QUERY,
    MEMORY,
    Found,
    KnowledgeCore,
    check_limit,
    check_text,
    user_id_of,
)
from server.retrieval.models import Document, Memory
from server.retrieval.store import any_of, quote


class ReplyContext(KnowledgeCore):
    """Passages a reply or a search may use, filtered by what its reader may see."""

    async def for_reply(
        self, principal: Principal, *, chat_id: int, agent_id: int | None, file_sources: Sequence[str], query: str
    ) -> list[Found]:
        """Passages for a reply in the caller's chat `chat_id`: from the agent's documents, the
        chat's, the files named with the message, and the agent's memory of this user.

        Nothing is embedded or searched when none of these exist."""
        owner = user_id_of(principal)
        clauses = []
        async with self._database.sessions() as session:
            if agent_id is not None and await usable_agent(session, agent_id, owner) is None:
                agent_id = None  # made private since: its documents and memory are its owner's alone
            if agent_id is not None and await session.scalar(
                select(Document.id).where(Document.entity_type == "agent", Document.entity_id == agent_id).limit(1)
            ):
                clauses.append(f"(scope == {quote(DOCUMENT)} and entity == {quote(f'agent:{agent_id}')})")
            if await session.scalar(
                select(Document.id).where(Document.entity_type == "chat", Document.entity_id == chat_id).limit(1)
            ):
                clauses.append(
                    f"(owner_id == {owner} and scope == {quote(DOCUMENT)} and entity == {quote(f'chat:{chat_id}')})"
                )
            if agent_id is not None and await session.scalar(
                select(Memory.id).where(Memory.owner_id == owner, Memory.agent_id == agent_id).limit(1)
            ):
                clauses.append(
                    f"(owner_id == {owner} and scope == {quote(MEMORY)} and entity == {quote(f'agent:{agent_id}')})"
                )
        if file_sources:
            clauses.append(f"(owner_id == {owner} and {any_of('source', list(file_sources))})")
        if not clauses:
            return []
        limit = self.settings.reply_passages
        hits = await self._search(query[:MAX_QUERY], where=" or ".join(clauses), limit=limit * 2, mode="hybrid")
        found: list[Found] = []
        used = 0
        for passage in (await self._visible(hits, reader=owner))[:limit]:
            if used + len(passage.text) > self.settings.reply_chars and found:
                break
            found.append(passage)
            used += len(passage.text)
        return found

    async def search(
        self, principal: Principal, query: str, *, limit: int, documents: bool = True, corpus: bool = True
    ) -> list[Found]:
        """Passages of the caller's own documents and/or the corpus closest to `query`, best
        first, with their citations (the search_documents tool)."""
        owner = user_id_of(principal)
        check_text(query, "query", MAX_QUERY)
        limit = check_limit(limit, 5, "limit")
        clauses = []
        if documents:
            clauses.append(f"(owner_id == {owner} and scope == {quote(DOCUMENT)})")
        if corpus:
            clauses.append(f"scope == {quote(CORPUS)}")
        if not clauses:
            return []
        hits = await self._search(query, where=" or ".join(clauses), limit=limit * 2, mode="hybrid")
        return (await self._visible(hits))[:limit]
