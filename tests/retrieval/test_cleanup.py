"""What no row names is removed: passages and files a crashed ingestion left, a deleted user's
documents and memories, and what could not be deleted while the vector store was down."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from server.auth import Principal
from server.errors import Unavailable
from server.retrieval.models import Document, PendingCleanup
from server.retrieval.service import KnowledgeBase, write_atomically
from server.retrieval.store import PassageFilter
from server.storage.models import utcnow
from tests.identity.helpers import admin, new_account
from tests.retrieval.test_documents import GUIDE, agent, passages_of, source_key, stored_files, upload
from tests.retrieval.test_memory_and_replies import remember
from tests.support.live import LiveStack


def knowledge_of(stack: LiveStack) -> KnowledgeBase:
    assert stack.server.retrieval is not None
    return stack.server.retrieval.knowledge


def ledger(stack: LiveStack, keys: list[str] | None = None) -> dict[str, str]:
    """The cleanup ledger's entries (those of `keys` if given): source key → state."""

    async def read() -> dict[str, str]:
        query = select(PendingCleanup)
        if keys is not None:
            query = query.where(PendingCleanup.source_key.in_(keys))
        async with stack.server.database.sessions() as session:
            return {row.source_key: row.state for row in await session.scalars(query)}

    return stack.run(read())


async def age_ingestions(stack: LiveStack, keys: list[str] | None = None) -> None:
    """The ingesting entries (those of `keys` if given) look an hour old, as if their process
    had gone silent."""
    query = update(PendingCleanup).where(PendingCleanup.state == "ingesting")
    if keys is not None:
        query = query.where(PendingCleanup.source_key.in_(keys))
    async with stack.server.database.sessions() as session, session.begin():
        await session.execute(query.values(touched_at=utcnow() - timedelta(hours=1)))


def test_what_a_crashed_ingestion_left_is_removed_once_it_is_stale(rag_stack: LiveStack) -> None:
    knowledge = knowledge_of(rag_stack)
    key = uuid.uuid4().hex
    stored = knowledge._stored(key)

    async def crash_mid_upload() -> None:
        # An upload's steps up to the row that would name `key`, which never commits: the process dies.
        await knowledge.cleanup.ingesting(key)
        write_atomically(stored, GUIDE.encode())
        stored.with_name(stored.name + ".part").write_bytes(b"half")
        await knowledge._index(
            GUIDE, owner_id=1, scope="document", entity="user:1", source=key, sha256="0" * 64, path="lost.md"
        )

    rag_stack.run(crash_mid_upload())
    assert passages_of(rag_stack, key) > 0 and stored.exists()
    assert ledger(rag_stack, [key]) == {key: "ingesting"}

    # Recently touched: it may be an ingestion still under way in another process.
    assert rag_stack.run(knowledge.cleanup.sweep([key])) == 0
    assert passages_of(rag_stack, key) > 0 and stored.exists()

    rag_stack.run(age_ingestions(rag_stack, [key]))
    assert rag_stack.run(knowledge.cleanup.sweep([key])) == 1
    assert passages_of(rag_stack, key) == 0
    assert not stored.exists() and not stored.with_name(stored.name + ".part").exists()
    assert ledger(rag_stack, [key]) == {}


def test_an_ingestion_stalled_past_the_grace_period_fails_and_leaves_nothing(
    http: httpx.Client, rag_stack: LiveStack
) -> None:
    owner = new_account(http)
    knowledge = knowledge_of(rag_stack)
    real_embedder = knowledge._embedder
    calls = 0

    class StallingEmbedder:
        """Before its second batch, the upload stalls so long that a sweep claims its key."""

        dimension = real_embedder.dimension

        async def embed(self, texts: Sequence[str]) -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:
                await age_ingestions(rag_stack)
                assert await knowledge.cleanup.sweep() >= 1
            return await real_embedder.embed(texts)

    # Enough paragraphs for two batches of passages.
    text = "\n\n".join(f"Note {index}: " + "la chaudière se purge par la vanne du bas. " * 14 for index in range(80))
    before = set(stored_files(rag_stack))

    async def count_documents() -> int:
        async with rag_stack.server.database.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Document)) or 0)

    documents_before = rag_stack.run(count_documents())
    knowledge._embedder = StallingEmbedder()  # type: ignore[assignment]
    try:
        with pytest.raises(Unavailable, match="stalled for more than"):
            rag_stack.run(
                knowledge.upload(
                    Principal(subject=str(owner.user_id), user_id=owner.user_id),
                    filename="notes.txt",
                    data=text.encode(),
                )
            )
    finally:
        knowledge._embedder = real_embedder
    assert calls >= 2
    assert rag_stack.run(count_documents()) == documents_before
    assert set(stored_files(rag_stack)) == before
    assert rag_stack.run(knowledge.passage_count(PassageFilter(owner_id=owner.user_id))) == 0
    assert ledger(rag_stack) == {}


def test_a_ledger_entry_never_removes_what_a_row_names(http: httpx.Client, rag_stack: LiveStack) -> None:
    owner = new_account(http)
    document = upload(http, owner, "guide.md", GUIDE.encode()).json()
    key = source_key(rag_stack, document["id"])
    knowledge = knowledge_of(rag_stack)

    async def wrongly_orphan() -> None:
        async with rag_stack.server.database.sessions() as session, session.begin():
            await knowledge.cleanup.orphaned(session, [key])

    rag_stack.run(wrongly_orphan())
    assert rag_stack.run(knowledge.cleanup.sweep([key])) == 0
    assert passages_of(rag_stack, key) == document["chunk_count"] > 0
    assert ledger(rag_stack, [key]) == {}
    assert http.get(f"/api/documents/{document['id']}", headers=owner.bearer).content == GUIDE.encode()


def test_deleting_a_user_removes_their_documents_memories_and_passages(
    http: httpx.Client, rag_stack: LiveStack
) -> None:
    root, leaving = admin(http), new_account(http)
    helper = agent(http, leaving, is_public=True)
    own = upload(http, leaving, "guide.md", GUIDE.encode()).json()
    given = upload(
        http,
        leaving,
        "notes.txt",
        b"Le mot de passe du wifi est affiche en cuisine.",
        entity_type="agent",
        entity_id=str(helper["id"]),
    ).json()
    remember(http, leaving, "Je prefere le the au cafe.")
    keys = [source_key(rag_stack, own["id"]), source_key(rag_stack, given["id"])]
    before = set(stored_files(rag_stack))
    assert all(passages_of(rag_stack, key) > 0 for key in keys)

    assert http.delete(f"/admin/users/{leaving.user_id}", headers=root.bearer).status_code == 204

    assert all(passages_of(rag_stack, key) == 0 for key in keys)
    assert rag_stack.run(knowledge_of(rag_stack).passage_count(PassageFilter(owner_id=leaving.user_id))) == 0
    assert not {knowledge_of(rag_stack)._stored(key) for key in keys} & set(stored_files(rag_stack))
    assert len(before - set(stored_files(rag_stack))) == 2
    assert ledger(rag_stack, keys) == {}
