"""Where journaled streams live: process memory, or Redis streams when Redis is configured.

A stream is claimed once by its owner, then appended to event by event (each event an opaque
serialised message with its sequence number), and ended. Readers get the events from a
sequence number on, then wait for the live rest until the end. Everything expires `ttl`
seconds after the stream's last write.

Across replicas, the process writing a stream can die before its end (killed, out of memory): its
writer keeps the stream `live` (a heartbeat while nothing is written) so that readers on other
replicas learn it is gone within seconds instead of waiting for the ttl, and end with
`StreamInterrupted`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import redis.asyncio as aioredis


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    data: bytes


class StreamInterrupted(Exception):
    """The stream's writer went away before writing its end."""


# A writer says it is alive every HEARTBEAT seconds while it has nothing to write; readers give up
# on it once LIVENESS seconds pass without a write or a heartbeat.
HEARTBEAT = 1.0
LIVENESS = 4.0


class JournalStore(Protocol):
    async def claim(self, stream_id: str, owner: str) -> bool:
        """Take `stream_id` for `owner`; False if it is already taken."""

    async def append(self, stream_id: str, entries: list[Entry], *, end: bool) -> None: ...

    async def keep_alive(self, stream_id: str) -> None:
        """The writer is still there, with nothing new to write."""

    async def link_message(self, stream_id: str, message_id: int) -> None:
        """Let the stream be found by the stored message it writes."""

    async def owner(self, stream_id: str) -> str | None: ...

    async def stream_of_message(self, message_id: int) -> str | None: ...

    def read(self, stream_id: str, from_seq: int) -> AsyncIterator[Entry]:
        """Entries with seq >= from_seq, then the live rest until the stream ends; raises
        StreamInterrupted when its writer went away first."""

    async def close(self) -> None: ...


@dataclass
class _Stream:
    owner: str
    entries: list[Entry] = field(default_factory=list)
    ended: bool = False
    touched: float = field(default_factory=time.monotonic)
    # Set and cleared at each append: it wakes the readers waiting then.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    size: int = 0
    messages: list[int] = field(default_factory=list)


# What an entry costs besides its bytes (the Entry object, its place in the list).
ENTRY_OVERHEAD = 72


class MemoryJournal:
    """One process's streams, least recently written first, forgotten `ttl` seconds after their last
    write or, oldest first, as soon as they hold more than `max_bytes` together: this process's
    memory, unlike Redis, is what every stream shares. A chat reply whose journal is gone replays
    from its stored message."""

    def __init__(self, ttl: float, max_bytes: int = 8 << 20) -> None:
        self._ttl = ttl
        self._max_bytes = max_bytes
        self._bytes = 0
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._messages: dict[int, str] = {}

    def _expire(self) -> None:
        cutoff = time.monotonic() - self._ttl
        while self._streams:
            stream_id, stream = next(iter(self._streams.items()))
            if stream.touched >= cutoff and self._bytes <= self._max_bytes:
                return
            del self._streams[stream_id]
            self._bytes -= stream.size
            for message_id in stream.messages:
                self._messages.pop(message_id, None)
            stream.ended = True
            stream.changed.set()  # its readers stop

    async def claim(self, stream_id: str, owner: str) -> bool:
        self._expire()
        if stream_id in self._streams:
            return False
        self._streams[stream_id] = _Stream(owner)
        return True

    async def append(self, stream_id: str, entries: list[Entry], *, end: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        size = sum(len(entry.data) + ENTRY_OVERHEAD for entry in entries)
        stream.entries.extend(entries)
        stream.size += size
        self._bytes += size
        stream.ended = stream.ended or end
        stream.touched = time.monotonic()
        self._streams.move_to_end(stream_id)
        stream.changed.set()
        stream.changed.clear()
        if self._bytes > self._max_bytes:
            self._expire()

    async def keep_alive(self, stream_id: str) -> None:
        """Nothing to do: readers of this journal live in the writer's process, and die with it."""

    async def link_message(self, stream_id: str, message_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.messages.append(message_id)
            self._messages[message_id] = stream_id

    async def owner(self, stream_id: str) -> str | None:
        stream = self._streams.get(stream_id)
        return stream.owner if stream is not None else None

    async def stream_of_message(self, message_id: int) -> str | None:
        return self._messages.get(message_id)

    async def read(self, stream_id: str, from_seq: int) -> AsyncIterator[Entry]:
        stream = self._streams.get(stream_id)
        position = 0
        while stream is not None:
            while position < len(stream.entries):
                entry = stream.entries[position]
                position += 1
                if entry.seq >= from_seq:
                    yield entry
            if stream.ended:
                return
            await stream.changed.wait()

    async def close(self) -> None:
        self._streams.clear()
        self._messages.clear()
        self._bytes = 0


class RedisJournal:
    """Streams as Redis streams `<prefix><id>` (fields seq, data, end), shared by every replica;
    `<prefix><id>:live` exists while the writer does."""

    BLOCK_MS = 1000

    def __init__(self, url: str, *, ttl: float, prefix: str = "relais:journal:") -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._ttl = max(1, int(ttl))
        self._prefix = prefix
        # When each stream this process writes last renewed its `live` key and its expiries: once a
        # HEARTBEAT is enough (readers wait LIVENESS), so most appends are a lone XADD, not four
        # commands (bench capacity: Redis CPU per entry).
        self._renewed: dict[str, float] = {}

    def _key(self, stream_id: str) -> str:
        return f"{self._prefix}{stream_id}"

    async def claim(self, stream_id: str, owner: str) -> bool:
        key = self._key(stream_id)
        if not await self._redis.set(key + ":owner", owner, nx=True, ex=self._ttl):
            return False
        await self.keep_alive(stream_id)  # alive from the start: a reader may come before the first event
        return True

    async def append(self, stream_id: str, entries: list[Entry], *, end: bool) -> None:
        key = self._key(stream_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for index, entry in enumerate(entries):
                last = end and index == len(entries) - 1
                pipe.xadd(key, {"seq": entry.seq, "data": entry.data, "end": int(last)})
            if end and not entries:
                pipe.xadd(key, {"seq": -1, "data": b"", "end": 1})
            if self._due(stream_id, end=end):  # the first append (the stream's expiry), then once a beat
                pipe.set(key + ":live", 1, px=int(LIVENESS * 1000))
                pipe.expire(key, self._ttl)
                pipe.expire(key + ":owner", self._ttl)
            await pipe.execute()

    def _due(self, stream_id: str, *, end: bool) -> bool:
        now = time.monotonic()
        if end:
            self._renewed.pop(stream_id, None)
            return True
        if now - self._renewed.get(stream_id, -HEARTBEAT) < HEARTBEAT:
            return False
        if len(self._renewed) > 100_000:  # writers that died without an end: forgetting costs one renewal
            self._renewed.clear()
        self._renewed[stream_id] = now
        return True

    async def keep_alive(self, stream_id: str) -> None:
        await self._redis.set(self._key(stream_id) + ":live", 1, px=int(LIVENESS * 1000))

    async def link_message(self, stream_id: str, message_id: int) -> None:
        await self._redis.set(f"{self._prefix}message:{message_id}", stream_id, ex=self._ttl)

    async def owner(self, stream_id: str) -> str | None:
        value = await self._redis.get(self._key(stream_id) + ":owner")
        return value.decode() if value is not None else None

    async def stream_of_message(self, message_id: int) -> str | None:
        value = await self._redis.get(f"{self._prefix}message:{message_id}")
        return value.decode() if value is not None else None

    async def read(self, stream_id: str, from_seq: int) -> AsyncIterator[Entry]:
        key, last_id = self._key(stream_id), "0-0"
        while await self._redis.exists(key + ":owner"):
            found = await self._redis.xread({key: last_id}, block=self.BLOCK_MS, count=512)
            if not found and not await self._redis.exists(key + ":live"):
                # Nothing came and the writer stopped saying it is alive; one last look, for what
                # it wrote just before its heartbeat lapsed.
                found = await self._redis.xread({key: last_id}, count=512)
                if not found:
                    raise StreamInterrupted(stream_id)
            for _, records in found:
                for record_id, fields in records:
                    last_id = record_id
                    seq = int(fields[b"seq"])
                    if seq >= from_seq:
                        yield Entry(seq, fields[b"data"])
                    if fields[b"end"] == b"1":
                        return

    async def close(self) -> None:
        await self._redis.aclose()
