"""Uploaded documents: stored as sent, their text indexed for the agent, chat or user they belong to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from server.agents.access import agent_ids_owned_by, usable_agent
from server.auth import Principal
from server.chats.access import owns_chat
from server.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unavailable,
    ValidationFailed,
)
from server.paging import Page
from server.retrieval import repository
from server.retrieval.core import (
    DOCUMENT,
    ENTITY_TYPES,
    KnowledgeCore,
    clean_filename,
    entity_of,
    sha256_hex,
    user_id_of,
    write_atomically,
)
from server.retrieval.extract import UnsupportedFile, extract_text, sniff
from server.retrieval.models import Document
from server.retrieval.views import DocumentView
from server.storage.queries import page_of

log = logging.getLogger("relais.retrieval")


class DocumentLibrary(KnowledgeCore):
    """Uploads, listing, download and deletion, and what a deleted agent, chat or user leaves."""

    async def upload(
        self,
        principal: Principal,
        *,
        filename: str,
        data: bytes,
        entity_type: str = "",
        entity_id: int = 0,
        conversation_id: str = "",
    ) -> DocumentView:
        owner = user_id_of(principal)
        if len(data) > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"The file exceeds the {self.settings.max_upload_bytes // (1024 * 1024)} MB limit")
        name = clean_filename(filename)
        kind, target_id = await self._attach_target(principal, entity_type, entity_id, conversation_id)
        sha = sha256_hex(data)
        # The same file sent again to the same place is the document already there: nothing to redo.
        existing = await self._uploaded(owner, kind, target_id, sha256=sha, filename=name)
        if existing is not None:
            return existing
        try:
            file_kind = sniff(data, name)
            text = await asyncio.to_thread(extract_text, data, file_kind)
        except UnsupportedFile as error:
            raise InvalidArgument(str(error)) from None
        document = Document(
            owner_id=owner,
            entity_type=kind,
            entity_id=target_id,
            filename=name,
            mime_type=file_kind.mime_type,
            file_size=len(data),
            sha256=sha,
        )
        return await self._ingest(document, data, text)

    async def _uploaded(
        self, owner: int, kind: str, target_id: int | None, *, sha256: str, filename: str
    ) -> DocumentView | None:
        """The owner's document of these bytes and this name attached to the same place, if any."""
        async with self._database.sessions() as session:
            found = await repository.uploaded(session, owner, kind, target_id, sha256=sha256, filename=filename)
            return DocumentView.of(found) if found is not None else None

    async def _ingest(self, document: Document, data: bytes, text: str | None) -> DocumentView:
        """Keep `data`, index `text` for what `document` belongs to, and commit `document`'s row
        naming them (see core.py: the row makes them visible); the document as committed."""
        async with self._new_source() as key:
            await asyncio.to_thread(write_atomically, self._stored(key), data)
            chunks = 0
            if text:
                # A user's own documents belong to the user: no entity id names them.
                target = document.entity_id if document.entity_id is not None else document.owner_id
                entity = entity_of(document.entity_type, target)
                chunks = await self._index(
                    text,
                    owner_id=document.owner_id,
                    scope=DOCUMENT,
                    entity=entity,
                    source=key,
                    sha256=document.sha256,
                    path=document.filename,
                )
            if chunks:
                await self._store.flush()
            document.source_key, document.chunk_count = key, chunks
            async with self._database.sessions() as session, session.begin():
                session.add(document)
                await self.cleanup.settled(session, key)
                await session.flush()  # its id and creation time, for the view
                view = DocumentView.of(document)
        log.info("document %d stored (%s, %d bytes, %d passages)", view.id, view.mime_type, len(data), chunks)
        return view

    async def _attach_target(
        self, principal: Principal, entity_type: str, entity_id: int, conversation_id: str
    ) -> tuple[str, int | None]:
        """What an upload belongs to, checked: the caller's chat, or an agent the caller owns."""
        owner = user_id_of(principal)
        if conversation_id:
            if not conversation_id.isdigit():
                raise NotFound(f"No conversation {conversation_id}")
            entity_type, entity_id = "chat", int(conversation_id)
        entity_type = entity_type or "user"
        if entity_type not in ENTITY_TYPES:
            raise ValidationFailed([FieldViolation(field="entity_type", message="must be agent, chat or user")])
        if entity_type == "user":
            if entity_id not in (0, owner):
                raise ValidationFailed([FieldViolation(field="entity_id", message="must be empty for user documents")])
            return "user", None
        if entity_id <= 0:
            raise ValidationFailed([FieldViolation(field="entity_id", message=f"names the {entity_type}; required")])
        async with self._database.sessions() as session:
            if entity_type == "chat":
                if not await owns_chat(session, entity_id, owner):
                    raise NotFound(f"No chat {entity_id}")
            else:
                agent = await usable_agent(session, entity_id, owner)
                if agent is None:
                    raise NotFound(f"No agent {entity_id}")
                if agent.owner_id != owner:
                    raise PermissionDenied("Only the agent's owner may give it documents")
        return entity_type, entity_id

    async def list_documents(
        self, principal: Principal, *, entity_type: str, entity_id: int, limit: int, offset: int
    ) -> Page[DocumentView]:
        statement = repository.documents(user_id_of(principal), entity_type=entity_type, entity_id=entity_id)
        async with self._database.sessions() as session:
            page = await page_of(session, statement, skip=offset, limit=limit)
            return page.map(DocumentView.of)

    async def document(self, principal: Principal, document_id: int) -> tuple[DocumentView, Path]:
        """A document of the caller's and where its bytes are; 404 for anyone else's."""
        async with self._database.sessions() as session:
            document = await self._owned(session, principal, document_id)
            return DocumentView.of(document), self._stored(document.source_key)

    @staticmethod
    async def _owned(session: AsyncSession, principal: Principal, document_id: int) -> Document:
        """The caller's document `document_id`; 404 for anyone else's, so that none can be discovered."""
        document = await repository.get_document(session, document_id)
        if document is None or document.owner_id != user_id_of(principal):
            raise NotFound(f"No document {document_id}")
        return document

    async def get_document(self, principal: Principal, document_id: int) -> tuple[DocumentView, Path]:
        """`document`, for a download: its bytes must be where this replica looks for them."""
        document, stored = await self.document(principal, document_id)
        if not await asyncio.to_thread(stored.is_file):
            # Replicas that do not share one documents volume (docs/scaling.md), or a file removed by
            # hand: the operator gets the path, the client a retryable answer that names no path.
            log.warning("document %d's bytes are missing: %s", document.id, stored)
            raise Unavailable(f"Document {document_id}'s file is not available on this server")
        return document, stored

    async def delete_document(self, principal: Principal, document_id: int) -> None:
        async with self._database.sessions() as session, session.begin():
            key = (await self._owned(session, principal, document_id)).source_key
            await repository.delete_document(session, document_id)
            await self.cleanup.orphaned(session, [key])
        await self.cleanup.sweep([key])

    async def forget_entity(self, entity_type: str, entity_id: int) -> None:
        """Delete the documents and memories of an agent or chat that is being deleted."""
        async with self._database.sessions() as session, session.begin():
            keys = await repository.delete_attached(session, entity_type, entity_id)
            if entity_type == "agent":
                keys += await repository.delete_agent_memories(session, entity_id)
            await self.cleanup.orphaned(session, keys)
        await self.cleanup.sweep(keys)

    async def before_user_deleted(self, session: AsyncSession, user_id: int) -> None:
        """In the transaction deleting a user, whose rows cascade: their documents, their
        memories and the memories others have on their agents are entered for cleanup."""
        their_agents = await agent_ids_owned_by(session, user_id)
        keys = await repository.user_source_keys(session, user_id, their_agents)
        await self.cleanup.orphaned(session, keys)

    async def after_user_deleted(self, user_id: int) -> None:
        await self.cleanup.sweep()

    async def check_files(self, principal: Principal, files: Sequence[int]) -> list[str]:
        """The source keys of documents named in a message; 404 for any the caller does not own."""
        if not files:
            return []
        owner = user_id_of(principal)
        async with self._database.sessions() as session:
            rows = {
                document.id: document.source_key for document in await repository.owned_documents(session, owner, files)
            }
        for document_id in files:
            if document_id not in rows:
                raise NotFound(f"No document {document_id}")
        return list(rows.values())
