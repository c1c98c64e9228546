"""What the live RPCs stream: subscriptions checked against the caller, event by event."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from server.auth import Principal
from server.chats.service import ChatService
from server.errors import FieldViolation, ResourceExhausted, ValidationFailed
from server.events.bus import Envelope, EventBus, Overflow, Selector, Subscription
from server.events.topics import ALL, CHAT_MESSAGE, CHAT_TYPING, SUBSCRIBABLE, Topic, Typing

MAX_TOPICS = 32


def resolve_topics(names: Sequence[str]) -> list[Topic[Any]]:
    """The topics `names` designate ("plugin.*" included); every subscribable one for none."""
    if len(names) > MAX_TOPICS:
        raise ValidationFailed([FieldViolation(field="topics", message=f"at most {MAX_TOPICS} topics")])
    if not names:
        return [ALL[name] for name in SUBSCRIBABLE]
    chosen: dict[str, Topic[Any]] = {}
    for index, name in enumerate(names):
        matches = [topic for topic in SUBSCRIBABLE if _matches(name.strip(), topic)]
        if not matches:
            message = f"unknown topic {name[:64]!r}; one of {', '.join(SUBSCRIBABLE)} (or a prefix such as 'plugin.*')"
            raise ValidationFailed([FieldViolation(field=f"topics[{index}]", message=message)])
        chosen.update((topic, ALL[topic]) for topic in matches)
    return list(chosen.values())


def _matches(pattern: str, topic: str) -> bool:
    if pattern in ("*", topic):
        return True
    return pattern.endswith(".*") and topic.startswith(pattern[:-1])


async def visible(subscription: Subscription, principal: Principal) -> AsyncIterator[Envelope]:
    """The subscription's envelopes that `principal` may see; a reader too slow to keep up is told so."""
    try:
        async for envelope in subscription:
            if envelope.topic.visible_to(principal, envelope.event):
                yield envelope
    except Overflow:
        raise ResourceExhausted("Too many events unread: reconnect and read faster") from None
    finally:
        subscription.close()


class LiveEvents:
    def __init__(self, bus: EventBus, chats: ChatService) -> None:
        self.bus = bus
        self._chats = chats

    async def watch_chat(self, principal: Principal, chat_id: int) -> Subscription:
        """A subscription to the chat's messages and typing, once the caller may read it (else NotFound)."""
        await self._chats.get(principal, chat_id)
        return self.bus.subscribe([Selector(CHAT_MESSAGE, key=chat_id), Selector(CHAT_TYPING, key=chat_id)])

    async def set_typing(self, principal: Principal, chat_id: int, *, is_typing: bool, connection_id: str) -> None:
        chat = await self._chats.get(principal, chat_id)
        assert principal.user_id is not None  # _chats.get refused anyone else
        typing = Typing(
            chat_id=chat_id,
            owner_id=chat.owner_id,
            user_id=principal.user_id,
            is_typing=is_typing,
            connection_id=connection_id[:128],
        )
        await self.bus.publish(CHAT_TYPING, typing)

    def subscribe(self, topics: Sequence[str]) -> tuple[list[str], Subscription]:
        chosen = resolve_topics(topics)
        return [topic.name for topic in chosen], self.bus.subscribe([Selector(topic) for topic in chosen])
