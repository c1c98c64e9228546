"""The async engine for SQLite (default) or PostgreSQL, and schema migrations.

Sessions are `TrackedSession`s: a commit whose connection is lost is COMMIT_OUTCOME_UNKNOWN
(server/storage/faults.py), and work registered with `on_commit` runs inside the transaction of
every commit the current task makes (an idempotent request marks itself saved with its writes).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from server.errors import DomainError
from server.storage.faults import Outage
from server.storage.writer_gate import WriterGate

log = logging.getLogger("relais.storage")

MIGRATIONS = Path(__file__).parent / "migrations"
# Arbitrary constant: the PostgreSQL advisory lock that serialises concurrent migrations.
MIGRATION_LOCK_ID = 0x52454C41
# Seconds a SQLite writer waits for another's transaction before "database is locked".
SQLITE_BUSY_TIMEOUT = 30


# Runs inside a commit's transaction, given the session and the rows the transaction created
# ("chats:42").
CommitHook = Callable[[AsyncSession, list[str]], Awaitable[None]]
_commit_hooks: contextvars.ContextVar[tuple[CommitHook, ...]] = contextvars.ContextVar(
    "relais_commit_hooks", default=()
)
# Where a session finds its database's outage tracker (in Session.info).
_OUTAGE = "relais.outage"
_CREATED = "relais.created"


@contextlib.contextmanager
def on_commit(hook: CommitHook) -> Iterator[None]:
    """Run `hook` inside the transaction of every commit the current task (and tasks it starts)
    makes while the block runs."""
    token = _commit_hooks.set((*_commit_hooks.get(), hook))
    try:
        yield
    finally:
        _commit_hooks.reset(token)


class _SyncSession(Session):
    """The sync half of TrackedSession; its after_flush listener notes the rows created."""


@event.listens_for(_SyncSession, "after_flush")
def _note_created(session: Session, _context: Any) -> None:
    created = session.info.setdefault(_CREATED, [])
    for instance in session.new:
        state = inspect(instance)
        key = state.mapper.primary_key_from_instance(instance)
        created.append(f"{state.mapper.local_table.name}:{','.join(str(part) for part in key)}")


class TrackedSession(AsyncSession):
    sync_session_class = _SyncSession

    def begin(self) -> AsyncSessionTransaction:
        return _TrackedTransaction(self)

    async def commit(self) -> None:
        await self.before_commit()
        try:
            await super().commit()
        except Exception as error:
            raise self.commit_failure(error) from error

    async def before_commit(self) -> None:
        """Flush, then run the commit hooks in the transaction about to be committed."""
        hooks = _commit_hooks.get()
        if not hooks:
            return
        await self.flush()
        created = list(self.sync_session.info.pop(_CREATED, []))
        for hook in hooks:
            await hook(self, created)

    def commit_failure(self, error: Exception) -> Exception:
        """What a failed COMMIT means: a lost connection leaves its outcome unknown."""
        outage = self.sync_session.info.get(_OUTAGE)
        translated: DomainError | None = outage.translate(error, committing=True) if outage is not None else None
        return translated or error


class _TrackedTransaction(AsyncSessionTransaction):
    """`async with session.begin():` whose commit is a TrackedSession's."""

    session: TrackedSession

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        if type_ is not None or not self.is_active:
            await super().__aexit__(type_, value, traceback)
            return
        try:
            await self.session.before_commit()
        except BaseException as error:
            await super().__aexit__(type(error), error, error.__traceback__)
            raise
        try:
            await super().__aexit__(None, None, None)  # the commit: everything was flushed above
        except Exception as error:
            failure = self.session.commit_failure(error)
            if failure is error:
                raise
            raise failure from error


@dataclass(slots=True)
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outage: Outage = field(default_factory=lambda: Outage("the database"))
    # SQLite's: this process's writers in arrival order (None on PostgreSQL).
    writer_gate: WriterGate | None = None

    def translate(self, error: BaseException) -> DomainError | None:
        """The domain error a storage exception means (DatabaseUnavailable), or None."""
        return self.outage.translate(error)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    async def ping(self) -> float:
        """Round-trip a `SELECT 1`; returns its duration in milliseconds."""
        started = time.perf_counter()
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000

    async def migrate(self) -> None:
        """Bring the schema to the latest revision (idempotent, safe across processes)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(url: str) -> Database:
    """An engine for `url` (an async SQLAlchemy URL, see Settings.sqlalchemy_url)."""
    parsed = make_url(url)
    options: dict[str, Any] = {}
    writer_gate = None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
        # Each aiosqlite connection is a thread plus PRAGMAs: keep enough of them pooled that
        # concurrent requests reuse connections instead of opening one per query.
        options.update(pool_size=16, max_overflow=16)
    else:
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_async_engine(url, **options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        writer_gate = WriterGate(timeout=SQLITE_BUSY_TIMEOUT).install(engine.sync_engine)
    outage = Outage("SQLite" if parsed.get_backend_name() == "sqlite" else "PostgreSQL")
    # A new connection is the end of any outage.
    event.listen(engine.sync_engine, "connect", lambda *_: outage.recovered())
    sessions = async_sessionmaker(engine, class_=TrackedSession, expire_on_commit=False, info={_OUTAGE: outage})
    return Database(engine=engine, sessions=sessions, outage=outage, writer_gate=writer_gate)  # type: ignore[arg-type]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    command.upgrade(alembic_config(connection), "head")
    log.info("database schema at head (%s)", connection.dialect.name)
