"""The event bus on its own: keyed delivery, slow subscribers, and two buses sharing Redis."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from server.auth import Principal
from server.events import LocalBus, Overflow
from server.events.bus import Selector
from server.events.redis import RedisBus
from server.events.topics import (
    CHAT_MESSAGE,
    SESSION_ENDED,
    TASK_COMPLETED,
    USER_LOGIN,
    MessageStored,
    SessionEnded,
    TaskCompleted,
    UserLogin,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


def stored(chat_id: int, text: str = "hi") -> MessageStored:
    return MessageStored(chat_id=chat_id, owner_id=1, message={"content": text})


async def next_of(subscription: object, wait: float = 5) -> object:
    return await asyncio.wait_for(subscription.__anext__(), wait)  # type: ignore[attr-defined]


async def test_a_keyed_subscriber_hears_only_its_key_and_a_topic_subscriber_hears_all() -> None:
    bus = LocalBus()
    one, every = bus.subscribe([Selector(CHAT_MESSAGE, key=1)]), bus.subscribe([Selector(CHAT_MESSAGE)])
    await bus.publish(CHAT_MESSAGE, stored(2, "other chat"))
    await bus.publish(CHAT_MESSAGE, stored(1, "this chat"))
    assert (await next_of(one)).event.message["content"] == "this chat"  # type: ignore[attr-defined]
    heard = [(await next_of(every)).event.chat_id for _ in range(2)]  # type: ignore[attr-defined]
    assert heard == [2, 1]


async def test_a_closed_subscription_is_detached_and_ends_its_reader() -> None:
    bus = LocalBus()
    subscription = bus.subscribe([Selector(CHAT_MESSAGE, key=1), Selector(USER_LOGIN)])
    assert bus.subscriber_count == 1
    reader = asyncio.ensure_future(next_of(subscription))
    await asyncio.sleep(0)
    subscription.close()
    with pytest.raises(StopAsyncIteration):
        await reader
    assert bus.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_is_cut_off_not_buffered_forever() -> None:
    bus = LocalBus()
    slow = bus.subscribe([Selector(CHAT_MESSAGE)], capacity=3)
    for index in range(5):
        await bus.publish(CHAT_MESSAGE, stored(1, str(index)))
    assert [(await next_of(slow)).event.message["content"] for _ in range(3)] == ["0", "1", "2"]  # type: ignore[attr-defined]
    with pytest.raises(Overflow):
        await next_of(slow)
    assert bus.subscriber_count == 0


def test_who_may_see_what() -> None:
    admin = Principal(subject="1", user_id=1, roles=frozenset({"admin"}), session_id="a")
    owner = Principal(subject="2", user_id=2, session_id="b")
    other = Principal(subject="3", user_id=3, session_id="c")
    login = UserLogin(user_id=2, email="x@example.com", username="x", session_id="b")
    assert USER_LOGIN.visible_to(admin, login) and not USER_LOGIN.visible_to(owner, login)
    task = TaskCompleted(task_id=9, owner_id=2)
    assert [TASK_COMPLETED.visible_to(p, task) for p in (admin, owner, other)] == [True, True, False]
    assert CHAT_MESSAGE.visible_to(owner, MessageStored(chat_id=1, owner_id=2, message={}))
    assert not CHAT_MESSAGE.visible_to(other, MessageStored(chat_id=1, owner_id=2, message={}))


def test_which_sessions_an_end_ends() -> None:
    session = Principal(subject="2", user_id=2, session_id="b")
    api_key = Principal(subject="2", user_id=2, api_key_id=5)
    assert SessionEnded(user_id=2, session_id="b").ends(session)
    assert not SessionEnded(user_id=2, session_id="other").ends(session)
    assert not SessionEnded(user_id=3).ends(session)
    # A password change ends the user's other sessions, not the one that made it, nor API keys.
    assert not SessionEnded(user_id=2, except_session_id="b", reason="password_changed").ends(session)
    assert SessionEnded(user_id=2, except_session_id="z", reason="password_changed").ends(session)
    assert not SessionEnded(user_id=2, reason="password_changed").ends(api_key)
    assert SessionEnded(user_id=2, reason="deactivated").ends(api_key)


async def test_two_buses_sharing_redis_hear_each_other_once() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    first, second = RedisBus(REDIS_URL, channel_prefix=prefix), RedisBus(REDIS_URL, channel_prefix=prefix)
    await first.start()
    await second.start()
    try:
        here = first.subscribe([Selector(SESSION_ENDED, key=7)])
        there = second.subscribe([Selector(SESSION_ENDED, key=7)])
        await first.publish(SESSION_ENDED, SessionEnded(user_id=8, reason="logout"))  # another key
        await first.publish(SESSION_ENDED, SessionEnded(user_id=7, session_id="s", reason="logout"))
        for subscription in (here, there):
            envelope = await next_of(subscription)
            assert envelope.event == SessionEnded(user_id=7, session_id="s", reason="logout")  # type: ignore[attr-defined]
            assert envelope.origin == first.node  # type: ignore[attr-defined]
        # Delivered once on the publishing node: its own echo from Redis is dropped.
        with pytest.raises(TimeoutError):
            await next_of(here, wait=0.3)
    finally:
        await first.close()
        await second.close()


async def test_a_malformed_message_on_the_channel_is_ignored() -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    bus = RedisBus(REDIS_URL, channel_prefix=prefix)
    await bus.start()
    try:
        subscription = bus.subscribe([Selector(USER_LOGIN)])
        await bus._redis.publish(prefix + "user.login", b"not json")
        await bus._redis.publish(prefix + "user.login", b'{"origin": "elsewhere", "ts": 1.0}')
        data = {"user_id": 1, "email": "a@b.c", "username": "a", "session_id": "s"}
        good = orjson.dumps({"origin": "elsewhere", "ts": 1.0, "data": data})
        await bus._redis.publish(prefix + "user.login", good)
        envelope = await next_of(subscription)
        assert envelope.event.email == "a@b.c" and envelope.ts == 1.0  # type: ignore[attr-defined]
    finally:
        await bus.close()
