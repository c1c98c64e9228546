"""Memories: what a user asked to keep, and what an agent that learns keeps of each exchange."""

from __future__ import annotations

from typing import Any

from server.auth import Principal
from server.errors import NotFound
from server.retrieval import repository
from server.retrieval.core import (
    MAX_MEMORY,
    MAX_QUERY,
    MEMORY,
    KnowledgeCore,
    check_limit,
    check_text,
    entity_of,
    sha256_hex,
    user_id_of,
)
from server.retrieval.models import Memory
from server.retrieval.store import PassageFilter
from server.retrieval.views import MemoryView


class MemoryBank(KnowledgeCore):
    """Memories indexed like documents, recalled by meaning, private to their owner."""

    async def remember(
        self, principal: Principal, content: str, metadata: dict[str, Any], *, agent_id: int | None = None
    ) -> MemoryView:
        owner = user_id_of(principal)
        check_text(content, "content", MAX_MEMORY)
        entity = entity_of("agent", agent_id) if agent_id is not None else entity_of("user", owner)
        async with self._new_source() as key:
            await self._index(
                content,
                owner_id=owner,
                scope=MEMORY,
                entity=entity,
                source=key,
                sha256=sha256_hex(content.encode()),
                path="memory",
            )
            async with self._database.sessions() as session, session.begin():
                memory = Memory(owner_id=owner, agent_id=agent_id, content=content, metadata_=metadata, source_key=key)
                session.add(memory)
                await self.cleanup.settled(session, key)
                await session.flush()  # its id and creation time, for the view
                view = MemoryView.of(memory)
        return view

    async def recall(self, principal: Principal, query: str, limit: int) -> list[tuple[MemoryView, float]]:
        """The caller's memories closest to `query`, best first, each once."""
        owner = user_id_of(principal)
        check_text(query, "q", MAX_QUERY)
        limit = check_limit(limit, 5, "limit")
        hits = await self._search(
            query, where=PassageFilter(owner_id=owner, scope=MEMORY), limit=limit * 3, mode="hybrid"
        )
        best: dict[str, float] = {}
        for hit in hits:
            best.setdefault(hit.passage.source, hit.score)
        async with self._database.sessions() as session:
            memories = await repository.memories_with_keys(session, list(best), owner_id=owner)
            views = {memory.source_key: MemoryView.of(memory) for memory in memories}
        return [(views[key], score) for key, score in best.items() if key in views][:limit]

    async def forget_memory(self, principal: Principal, memory_id: int) -> None:
        owner = user_id_of(principal)
        async with self._database.sessions() as session, session.begin():
            memory = await repository.get_memory(session, memory_id)
            if memory is None or memory.owner_id != owner:
                raise NotFound(f"No memory {memory_id}")
            key = memory.source_key
            await repository.delete_memory(session, memory_id)
            await self.cleanup.orphaned(session, [key])
        await self.cleanup.sweep([key])

    async def memory_count(self, principal: Principal) -> int:
        owner = user_id_of(principal)
        async with self._database.sessions() as session:
            return await repository.memory_count(session, owner)

    async def learn(self, principal: Principal, agent_id: int, *, question: str, answer: str, chat_id: int) -> None:
        """Keep an exchange in the agent's memory of this user (learn_from_interaction)."""
        content = f"User: {question}\nAssistant: {answer}"[:MAX_MEMORY]
        await self.remember(principal, content, {"chat_id": chat_id, "learned": True}, agent_id=agent_id)
