"""What a reader gets: the passages for a chat reply, and the search_documents tool's results."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from server.agents.access import usable_agent
from server.auth import Principal
from server.retrieval import repository
from server.retrieval.core import (
    CORPUS,
    DOCUMENT,
    MAX_QUERY,
    MEMORY,
    Found,
    KnowledgeCore,
    check_limit,
    check_text,
    entity_of,
    user_id_of,
)
from server.retrieval.store import PassageFilter


class ReplyContext(KnowledgeCore):
    """Passages a reply or a search may use, filtered by what its reader may see."""

    async def for_reply(
        self, principal: Principal, *, chat_id: int, agent_id: int | None, file_sources: Sequence[str], query: str
    ) -> list[Found]:
        """Passages for a reply in the caller's chat `chat_id`: from the agent's documents, the
        chat's, the files named with the message, and the agent's memory of this user.

        Nothing is embedded or searched when none of these exist."""
        owner = user_id_of(principal)
        async with self._database.sessions() as session:
            wanted = await self._reply_sources(session, owner, chat_id=chat_id, agent_id=agent_id)
        if file_sources:
            wanted.append(PassageFilter(owner_id=owner, sources=tuple(file_sources)))
        if not wanted:
            return []
        limit = self.settings.reply_passages
        hits = await self._search(query[:MAX_QUERY], where=wanted, limit=limit * 2, mode="hybrid")
        return self._within_reply_budget(await self._visible(hits, reader=owner))

    @staticmethod
    async def _reply_sources(
        session: AsyncSession, owner: int, *, chat_id: int, agent_id: int | None
    ) -> list[PassageFilter]:
        """What a reply in the chat `chat_id` may draw on, among the agent's documents, the chat's
        and the agent's memory of `owner`: only what has rows, so that a reply with none of them
        asks the store nothing."""
        if agent_id is not None and await usable_agent(session, agent_id, owner) is None:
            agent_id = None  # made private since: its documents and memory are its owner's alone
        wanted = []
        if agent_id is not None and await repository.has_attached(session, "agent", agent_id):
            wanted.append(PassageFilter(scope=DOCUMENT, entity=entity_of("agent", agent_id)))
        if await repository.has_attached(session, "chat", chat_id):
            wanted.append(PassageFilter(owner_id=owner, scope=DOCUMENT, entity=entity_of("chat", chat_id)))
        if agent_id is not None and await repository.has_agent_memories(session, owner, agent_id):
            wanted.append(PassageFilter(owner_id=owner, scope=MEMORY, entity=entity_of("agent", agent_id)))
        return wanted

    def _within_reply_budget(self, passages: list[Found]) -> list[Found]:
        """The best `reply_passages` of `passages`, as many as fit in `reply_chars` (one at least)."""
        fitting: list[Found] = []
        used = 0
        for passage in passages[: self.settings.reply_passages]:
            if used + len(passage.text) > self.settings.reply_chars and fitting:
                break
            fitting.append(passage)
            used += len(passage.text)
        return fitting

    async def search(
        self, principal: Principal, query: str, *, limit: int, documents: bool = True, corpus: bool = True
    ) -> list[Found]:
        """Passages of the caller's own documents and/or the corpus closest to `query`, best
        first, with their citations (the search_documents tool)."""
        owner = user_id_of(principal)
        check_text(query, "query", MAX_QUERY)
        limit = check_limit(limit, 5, "limit")
        wanted = []
        if documents:
            wanted.append(PassageFilter(owner_id=owner, scope=DOCUMENT))
        if corpus:
            wanted.append(PassageFilter(scope=CORPUS))
        if not wanted:
            return []
        hits = await self._search(query, where=wanted, limit=limit * 2, mode="hybrid")
        return (await self._visible(hits))[:limit]
