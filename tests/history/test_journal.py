"""The stream journal on its own, in memory and in the local Redis: the same contract for both
(claim once, read from a sequence number then the live rest, find a stream by its message,
expire), and the replay rules on top (owner only, anonymous streams not kept)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from relais.v1 import events_pb2

from server.auth import ANONYMOUS, Principal
from server.errors import NotFound
from server.history.events import EventStream
from server.history.repository import (
    LIVENESS,
    Entry,
    JournalStore,
    MemoryJournal,
    RedisJournal,
    StreamInterrupted,
)
from server.history.service import Journal, Recording

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = Principal(subject="user:1", user_id=1)
BOB = Principal(subject="user:2", user_id=2)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[JournalStore]:
    journal: JournalStore
    if request.param == "memory":
        journal = MemoryJournal(ttl=60)
    else:
        journal = RedisJournal(REDIS_URL, ttl=60, prefix=f"test:journal:{uuid.uuid4().hex}:")
    yield journal
    await journal.close()


async def read_all(store: JournalStore, stream_id: str, from_seq: int = 0) -> list[Entry]:
    return [entry async for entry in store.read(stream_id, from_seq)]


async def test_a_stream_is_claimed_once_and_read_from_any_seq(store: JournalStore) -> None:
    assert await store.claim("s", "user:1") and not await store.claim("s", "user:2")
    await store.append("s", [Entry(0, b"a"), Entry(1, b"b")], end=False)
    await store.append("s", [Entry(2, b"c")], end=True)

    assert await store.owner("s") == "user:1" and await store.owner("other") is None
    assert [entry.data for entry in await read_all(store, "s")] == [b"a", b"b", b"c"]
    assert [entry.seq for entry in await read_all(store, "s", 2)] == [2]
    assert await read_all(store, "s", 3) == []


async def test_a_reader_gets_the_live_rest_until_the_end(store: JournalStore) -> None:
    await store.claim("live", "user:1")
    await store.append("live", [Entry(0, b"status")], end=False)
    reader = asyncio.ensure_future(read_all(store, "live"))
    await asyncio.sleep(0.2)
    assert not reader.done()  # waiting for more
    await store.append("live", [Entry(1, b"token")], end=False)
    await store.append("live", [], end=True)  # an end with nothing new
    entries = await asyncio.wait_for(reader, 10)
    assert [entry.data for entry in entries] == [b"status", b"token"]


async def test_a_chat_reply_stream_is_found_by_its_message(store: JournalStore) -> None:
    await store.claim("reply", "user:1")
    await store.link_message("reply", 42)
    assert await store.stream_of_message(42) == "reply" and await store.stream_of_message(43) is None


async def test_streams_expire_after_their_ttl() -> None:
    memory = MemoryJournal(ttl=0.05)
    await memory.claim("old", "user:1")
    await asyncio.sleep(0.1)
    await memory.claim("new", "user:1")  # expiry is lazy: claims sweep
    assert await memory.owner("old") is None and await memory.owner("new") == "user:1"

    prefix = f"test:journal:{uuid.uuid4().hex}:"
    journal = RedisJournal(REDIS_URL, ttl=30, prefix=prefix)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await journal.claim("s", "user:1")
        await journal.append("s", [Entry(0, b"x")], end=True)
        await journal.link_message("s", 7)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        ttls = [await client.ttl(key) for key in keys]
        # The stream, its owner, its message link, and its writer's liveness (seconds, not the ttl).
        assert len(keys) == 4 and all(0 < ttl <= 30 for ttl in ttls)
        assert 0 < await client.ttl(f"{prefix}s:live") <= LIVENESS
    finally:
        await client.delete(*[key async for key in client.scan_iter(match=f"{prefix}*")])
        await client.aclose()
        await journal.close()


async def test_an_event_stream_is_replayed_to_its_owner_only(store: JournalStore) -> None:
    journal = Journal(store)
    stream = await EventStream.open(journal, "req-1", ALICE)
    stream.emit(status=events_pb2.StreamStatus(state=events_pb2.STREAM_STATE_STARTED))
    stream.emit(token=events_pb2.TokenDelta(text="Bon"))
    # The client left; the model had produced "jour" too, which it never got.
    await stream.close(partial_text="Bonjour")

    replayed = [events_pb2.StreamEvent.FromString(entry.data) async for entry in journal.events("req-1", 0)]
    assert [event.WhichOneof("event") for event in replayed] == ["status", "token", "token", "error"]
    assert "".join(event.token.text for event in replayed) == "Bonjour" == replayed[-1].error.partial_text
    assert replayed[-1].error.code == "CANCELLED" and [event.seq for event in replayed] == [0, 1, 2, 3]
    assert await journal.resolve(ALICE, req_id="req-1", message_id=0) == "req-1"
    for principal in (BOB, ANONYMOUS):
        with pytest.raises(NotFound):
            await journal.resolve(principal, req_id="req-1", message_id=0)
    # The same request id again (a WebSocket's generations share their handshake's) is a new
    # stream, named apart, however many there are.
    again = {(await EventStream.open(journal, "req-1", ALICE)).req_id for _ in range(100)}
    assert len(again) == 100 and all(name.startswith("req-1.") for name in again)


async def test_anonymous_streams_are_not_journaled(store: JournalStore) -> None:
    journal = Journal(store)
    stream = await EventStream.open(journal, "anon", ANONYMOUS)
    stream.emit(token=events_pb2.TokenDelta(text="x"))
    await stream.close(partial_text="x")
    assert await store.owner("anon") is None


async def test_a_reader_on_another_replica_ends_when_the_writer_dies_mid_stream() -> None:
    """Two RedisJournal clients stand for two replicas. The writer's Recording heartbeats while the
    model is quiet, so a reader keeps waiting; once the writer is gone (no end, no heartbeat), the
    reader ends with StreamInterrupted within the liveness window instead of the journal's ttl."""
    prefix = f"test:journal:{uuid.uuid4().hex}:"
    writer, reader = (RedisJournal(REDIS_URL, ttl=600, prefix=prefix) for _ in range(2))
    try:
        assert await writer.claim("s", "user:1")
        recording = Recording(writer, "s")
        recording.add(0, b"status")
        received: list[bytes] = []

        async def read() -> None:
            async for entry in reader.read("s", 0):
                received.append(entry.data)

        reading = asyncio.ensure_future(read())
        await asyncio.sleep(LIVENESS + 1.5)  # quiet longer than the liveness window: heartbeats keep it open
        assert received == [b"status"] and not reading.done()

        recording.add(1, b"token")
        await asyncio.sleep(0.3)
        assert recording._task is not None
        recording._task.cancel()  # the replica dies: no end, no more heartbeats
        started = asyncio.get_running_loop().time()
        with pytest.raises(StreamInterrupted):
            await asyncio.wait_for(reading, LIVENESS + 5)
        assert received == [b"status", b"token"]
        assert asyncio.get_running_loop().time() - started <= LIVENESS + RedisJournal.BLOCK_MS / 1000 + 1
    finally:
        await writer.close()
        await reader.close()


async def test_a_reader_arriving_before_the_first_event_waits_for_it() -> None:
    """Claimed, nothing written yet (the model is loading): the stream is alive from its claim."""
    store = RedisJournal(REDIS_URL, ttl=600, prefix=f"test:journal:{uuid.uuid4().hex}:")
    try:
        assert await store.claim("s", "user:1")
        reading = asyncio.ensure_future(read_all(store, "s"))
        await asyncio.sleep(LIVENESS / 2)
        await store.append("s", [Entry(0, b"first")], end=True)
        assert [entry.data for entry in await asyncio.wait_for(reading, 5)] == [b"first"]
    finally:
        await store.close()
