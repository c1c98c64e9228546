"""Journaling streams as they are served, and replaying them to their owner.

A `Recording` is opened per stream: it names the stream (the request id, suffixed at random
when a request opens several streams), and takes each serialised event as it is sent. Writes go
through a background task, so a slow store never holds a token back; the recording's end
waits for them. Replay checks the owner first: somebody else's stream and an unknown one
are the same NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

from server.auth import Principal
from server.errors import NotFound
from server.history.repository import HEARTBEAT, Entry, JournalStore, StreamInterrupted

__all__ = ["Journal", "Recording", "StreamInterrupted", "owner_of"]

log = logging.getLogger("relais.history")

# A chat reply whose journal expired: (principal, message_id) -> the stored reply's text and
# model, or None when the message is not the caller's.
StoredReply = Callable[[Principal, int], Awaitable[tuple[str, str, int] | None]]


def owner_of(principal: Principal) -> str | None:
    """Who may replay a stream: its authenticated caller. Anonymous streams are not replayable
    (every anonymous caller is the same principal)."""
    return None if principal.anonymous else principal.subject


class Recording:
    """One stream being journaled."""

    def __init__(self, store: JournalStore | None, stream_id: str) -> None:
        self.stream_id = stream_id
        self._store = store
        self._pending: list[Entry] = []
        self._wake = asyncio.Event()
        self._ended = False
        self._task = asyncio.create_task(self._flush()) if store is not None else None

    def add(self, seq: int, data: bytes) -> None:
        if self._task is not None:
            self._pending.append(Entry(seq, data))
            self._wake.set()

    def link_message(self, message_id: int) -> None:
        if self._store is not None and message_id:
            self._spawn(self._store.link_message(self.stream_id, message_id))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                await work

        task = asyncio.create_task(run())
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def _flush(self) -> None:
        assert self._store is not None
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT):
                    await self._wake.wait()
            except TimeoutError:
                # Nothing to write (the model is thinking, a tool is running): say we are alive.
                with contextlib.suppress(Exception):
                    await self._store.keep_alive(self.stream_id)
                continue
            self._wake.clear()
            batch, self._pending = self._pending, []
            end = self._ended
            try:
                await self._store.append(self.stream_id, batch, end=end)
            except Exception:
                log.warning("journal write failed for stream %s", self.stream_id, exc_info=True)
            if end and not self._pending:
                return

    async def end(self) -> None:
        """Mark the stream ended and wait (shielded from the caller's cancellation) for its writes."""
        if self._task is None or self._ended:
            return
        self._ended = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(self._task)


_BACKGROUND: set[asyncio.Task[None]] = set()


class Journal:
    def __init__(self, store: JournalStore, stored_reply: StoredReply | None = None) -> None:
        self._store = store
        self.stored_reply = stored_reply

    async def open(self, request_id: str, principal: Principal | None) -> Recording:
        """A recording for a new stream of `request_id`; not journaled for anonymous callers."""
        owner = owner_of(principal) if principal is not None else None
        if owner is None:
            return Recording(None, request_id)
        # The request id names the stream, unless the request opens several (a WebSocket serves
        # any number of generations under its handshake's id): then a random suffix, not a count,
        # so that the n-th stream of a socket costs two claims, not n.
        base = request_id or "stream"
        if await self._store.claim(base, owner):
            return Recording(self._store, base)
        for _ in range(8):
            stream_id = f"{base}.{secrets.token_hex(6)}"
            if await self._store.claim(stream_id, owner):
                return Recording(self._store, stream_id)
        raise RuntimeError(f"no free stream id for request {request_id!r}")

    async def resolve(self, principal: Principal, *, req_id: str, message_id: int) -> str | None:
        """The caller's stream named by req_id or message_id; None if the journal has it no more
        (a chat reply then replays from its stored message); NotFound if it is not the caller's."""
        owner = owner_of(principal)
        if owner is None:
            raise NotFound("No such stream")
        stream_id = req_id or (await self._store.stream_of_message(message_id) if message_id else None)
        if stream_id is not None:
            if await self._store.owner(stream_id) == owner:
                return stream_id
            if req_id:
                raise NotFound(f"No stream {req_id!r}")
        if message_id and self.stored_reply is not None and await self.stored_reply(principal, message_id):
            return None
        raise NotFound(f"No stream {req_id!r}" if req_id else f"No stream for message {message_id}")

    def events(self, stream_id: str, from_seq: int) -> AsyncIterator[Entry]:
        """The stream's events from `from_seq` on, live until it ends; StreamInterrupted when the
        replica writing it went away first."""
        return self._store.read(stream_id, from_seq)

    async def close(self) -> None:
        await self._store.close()
