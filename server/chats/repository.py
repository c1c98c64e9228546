"""Queries of the chats domain: conversations and their messages. Functions take an open session
and never commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, distinct, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.chats.models import Chat, Message
from server.storage.models import utcnow


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (escape character: backslash)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def get_chat(session: AsyncSession, chat_id: int) -> Chat | None:
    return await session.get(Chat, chat_id)


async def get_message(session: AsyncSession, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


async def chat_owner(session: AsyncSession, chat_id: int) -> int | None:
    """Whose the chat `chat_id` is; None when it does not exist."""
    owner_id: int | None = await session.scalar(select(Chat.owner_id).where(Chat.id == chat_id))
    return owner_id


def chats(owner_id: int, *, search: str = "") -> Select[tuple[Chat]]:
    """The user's conversations (those whose title or one of whose messages contains `search`),
    most recently active first."""
    statement = select(Chat).where(Chat.owner_id == owner_id)
    if search:
        pattern = like_pattern(search)
        in_messages = select(Message.id).where(Message.chat_id == Chat.id, Message.content.ilike(pattern, escape="\\"))
        statement = statement.where(or_(Chat.title.ilike(pattern, escape="\\"), in_messages.exists()))
    activity = func.coalesce(Chat.last_message_at, Chat.created_at)
    return statement.order_by(activity.desc(), Chat.id.desc())


async def messages(session: AsyncSession, chat_id: int, *, complete_only: bool = False) -> list[Message]:
    """The conversation's messages in order (only those stored whole: the history a reply reads)."""
    statement = select(Message).where(Message.chat_id == chat_id)
    if complete_only:
        statement = statement.where(Message.status == "complete")
    return list(await session.scalars(statement.order_by(Message.id)))


async def matching_messages(
    session: AsyncSession, owner_id: int, text: str, *, limit: int
) -> list[tuple[Message, str]]:
    """The user's messages containing `text` (case-insensitive), newest first, each with its
    conversation's title."""
    rows = await session.execute(
        select(Message, Chat.title)
        .join(Chat, Chat.id == Message.chat_id)
        .where(Chat.owner_id == owner_id, Message.content.ilike(like_pattern(text), escape="\\"))
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return [(message, title) for message, title in rows]


async def activity(session: AsyncSession, owner_id: int) -> dict[str, int]:
    """The user's conversations and messages counted, and the tokens their replies used."""
    # Conversations without messages count too: hence the outer join and the distinct count.
    statement = (
        select(
            func.count(distinct(Chat.id)),
            func.count(Message.id),
            func.sum(case((Message.role == "user", 1), else_=0)),
            func.sum(case((Message.role == "assistant", 1), else_=0)),
            func.sum(Message.prompt_tokens),
            func.sum(Message.completion_tokens),
        )
        .select_from(Chat)
        .outerjoin(Message, Message.chat_id == Chat.id)
        .where(Chat.owner_id == owner_id)
    )
    names = ("conversations", "messages", "user_messages", "assistant_messages", "prompt_tokens", "completion_tokens")
    row = (await session.execute(statement)).one()
    return {name: int(value or 0) for name, value in zip(names, row, strict=True)}


async def add_message(session: AsyncSession, message: Message) -> None:
    await add_messages(session, message)


async def add_messages(session: AsyncSession, *messages: Message) -> None:
    """Add messages of one conversation without reading it: counted into it by the database, so
    that a reply and a question stored at the same moment cannot lose one of their counts.
    Flushed one by one, at once: their ids follow their order, and ids and timestamps are known
    when this returns."""
    for message in messages:
        session.add(message)
        await session.flush()
    counted = update(Chat).where(Chat.id == messages[0].chat_id)
    await session.execute(counted.values(message_count=Chat.message_count + len(messages), last_message_at=utcnow()))


async def rewrite_message(session: AsyncSession, message_id: int, fields: dict[str, Any]) -> Message | None:
    """The message with `fields` written over, in one UPDATE ... RETURNING (not a read then a
    write); None when it no longer exists."""
    rewrite = update(Message).where(Message.id == message_id).values(**fields).returning(Message)
    rewritten: Message | None = await session.scalar(rewrite)
    return rewritten
