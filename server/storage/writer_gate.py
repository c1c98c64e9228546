"""SQLite's writers, one at a time per process and in arrival order.

SQLite lets one transaction write at a time. A second writer's INSERT does not queue: its
busy handler sleeps and retries (1, 2, 5 … 100 ms apart) until the lock is free at the moment
it looks. With aiosqlite the lock is held across event-loop round trips (each statement is a
hop to the connection's thread and back), so under sixteen concurrent chat replies the waiting
writers kept missing it: 2.3 s for one INSERT that needs a millisecond, while the lock sat idle
between polls.

The gate orders this process's writers itself: a connection takes it just before the statement
that starts its write transaction (the first INSERT, UPDATE, DELETE or REPLACE: where the
sqlite3 module issues its BEGIN) and gives it back when the connection returns to the pool,
after its COMMIT or ROLLBACK. Waiters are woken first come, first served, the moment it is free;
readers never wait (WAL). It holds exactly when SQLite's lock would, so it blocks nothing that
was not blocked before; other processes on the same file still meet SQLite's busy handler.
A writer that waits longer than the busy timeout gets "database is locked", as it would have
from SQLite (503, see faults.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util.concurrency import await_only, in_greenlet

# The statements before which the sqlite3 module begins a transaction (its legacy, default mode).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# Where a pooled connection keeps the gate it holds (its ConnectionPoolEntry's info).
_HELD = "relais.writer_gate"


class WriterGate:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # One lock per event loop (tests may run several loops, one after another, on an engine).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def install(self, engine: Engine) -> WriterGate:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.pool, "checkin", self._checkin)
        event.listen(engine.pool, "invalidate", self._invalidated)
        return self

    def _before_execute(self, connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        info = connection.info
        if _HELD in info or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if not in_greenlet():
            return  # the engine's sync API on a thread of its own: SQLite's busy handler orders it
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        await_only(self._acquire(lock))
        info[_HELD] = (lock, loop, threading.get_ident())

    async def _acquire(self, lock: asyncio.Lock) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError(
                f"database is locked (another transaction of this process has been writing for {self.timeout:g} s)"
            ) from None

    def _checkin(self, _dbapi_connection: Any, record: Any) -> None:
        self._release(record.info)

    def _invalidated(self, _dbapi_connection: Any, record: Any, _error: Any) -> None:
        self._release(record.info)

    @staticmethod
    def _release(info: dict[str, Any]) -> None:
        held = info.pop(_HELD, None)
        if held is None:
            return
        lock, loop, thread = held
        if threading.get_ident() == thread:
            lock.release()
        elif not loop.is_closed():
            # A connection collected on another thread (never closed by its user).
            loop.call_soon_threadsafe(lock.release)
