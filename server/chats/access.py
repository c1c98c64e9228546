"""Whose a chat is, for the domains that hang things on a chat (retrieval's documents): they ask
here rather than read the chats table."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from server.chats import repository


async def owns_chat(session: AsyncSession, chat_id: int, user_id: int) -> bool:
    """Whether the chat `chat_id` exists and is the user `user_id`'s."""
    owner_id = await repository.chat_owner(session, chat_id)
    return owner_id is not None and owner_id == user_id
