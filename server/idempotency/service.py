"""Idempotency keys, as Stripe's API and the IETF draft "The Idempotency-Key HTTP Header Field"
have them, for the creating RPCs whose (relais.options.v1.idempotency).key is set.

The first request with a key claims it (a RUNNING row, leased while it runs). Every commit the
request makes also marks the row `saved`, in the same transaction (storage's `on_commit`), so
whether the request changed anything is known even when its commit's answer was lost. Then:

    answered          → DONE with the answer; a retry gets it again (`idempotent-replayed`)
    failed, unsaved   → the row is removed; a retry runs afresh (nothing had changed)
    failed, saved     → DONE with the error; a retry gets it again (the change is there)
    cut off           → (a lost connection, a commit whose answer was lost, a crash) settled from
                        `saved` once the database answers again: removed if nothing was saved,
                        else SAVED: a retry is refused with ALREADY_EXISTS naming the rows
                        created, since the answer is lost but the change is not

A retry while the row is RUNNING gets ABORTED (409); the same key with another request gets
INVALID_ARGUMENT (422). A lease that runs out (the process died) lets a retry settle the row
the same way. Rows expire after a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import Aborted, AlreadyExists, DomainError, InvalidArgument, Unavailable
from server.idempotency import repository
from server.idempotency.models import DONE, RUNNING, SAVED, IdempotencyRecord
from server.storage import Database
from server.storage.faults import CommitOutcomeUnknown, unreachable
from server.storage.models import utcnow

log = logging.getLogger("relais.idempotency")

TTL = timedelta(hours=24)
# How long a claim holds its key without a sign of life (renewed while the request runs).
LEASE = timedelta(seconds=60)
# How often an outcome that could not be written (the database away) is tried again.
SETTLE_EVERY = 1.0


class KeyInUse(Aborted):
    reason = "IDEMPOTENCY_KEY_IN_USE"


class KeyReused(InvalidArgument):
    reason = "IDEMPOTENCY_KEY_REUSED"


class RequestSaved(AlreadyExists):
    reason = "IDEMPOTENT_REQUEST_SAVED"


@dataclass(slots=True)
class Claim:
    """A key this process serves now."""

    record_id: int
    token: str
    # A commit of the request carried the `saved` mark (it may have been cut off).
    committing: bool = False
    created: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer of the key's first request: status "OK" with its response, or an error."""

    status_code: str
    reason: str
    message: str
    response: bytes | None


class IdempotencyKeys:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._settling: set[asyncio.Task[None]] = set()

    async def begin(self, *, owner: str, method: str, key: str, fingerprint: str) -> Claim | Stored:
        """Claim `key`, or the stored answer of its first request; raises KeyReused, KeyInUse or
        RequestSaved."""
        now, token = utcnow(), secrets.token_hex(16)
        try:
            async with self._database.sessions() as session, session.begin():
                record = await repository.find_locked(session, owner, method, key)
                if record is None:
                    record = IdempotencyRecord(
                        owner=owner,
                        method=method,
                        key=key,
                        fingerprint=fingerprint,
                        state=RUNNING,
                        token=token,
                        locked_until=now + LEASE,
                        expires_at=now + TTL,
                    )
                    await repository.insert(session, record)
                    return Claim(record.id, token)
                outcome = _decide(record, fingerprint, now)
                if outcome == "take-over":
                    record.token, record.locked_until = token, now + LEASE
                    return Claim(record.id, token)
                if outcome == SAVED:
                    record.state = SAVED
        except IntegrityError:  # the same key claimed at the same moment
            raise KeyInUse("A request with this Idempotency-Key is being processed; retry later") from None
        return _answer(record)

    def on_commit(self, claim: Claim) -> Callable[[AsyncSession, list[str]], Awaitable[None]]:
        """The commit hook marking the claim saved, inside each of its request's transactions."""

        async def mark(session: AsyncSession, created: list[str]) -> None:
            claim.committing = True
            claim.created.extend(created)
            await repository.update_claimed(
                session, claim.record_id, claim.token, saved=True, created_rows=list(claim.created)
            )

        return mark

    @contextlib.asynccontextmanager
    async def held(self, claim: Claim) -> AsyncIterator[None]:
        """Renew the claim's lease while the request runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE.total_seconds() / 3)
                with contextlib.suppress(Exception):
                    await self._write(claim, locked_until=utcnow() + LEASE)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()

    async def succeeded(self, claim: Claim, response: bytes) -> None:
        await self._settle(claim, lambda: self._write(claim, state=DONE, status_code="OK", response=response))

    async def failed(self, claim: Claim, error: DomainError | None) -> None:
        """Settle the claim of a request that raised `error` (None: an unexpected exception)."""
        if not claim.committing:
            await self._settle(claim, lambda: self._remove(claim))
            return
        await self._settle(claim, lambda: self._after_commit(claim, error))

    async def _after_commit(self, claim: Claim, error: DomainError | None) -> None:
        async with self._database.sessions() as session:
            saved = await repository.was_saved(session, claim.record_id)
        if not saved:
            await self._remove(claim)
        elif error is None or isinstance(error, Unavailable):
            # Saved, then cut off (a lost connection, a commit whose answer was lost, a crash): the
            # change is there but its answer is not, and answering the outage again for a day
            # would hide that. The retry is told what was saved.
            await self._write(claim, state=SAVED)
        else:
            await self._write(claim, state=DONE, status_code=error.code, reason=error.reason, message=error.message)

    async def _settle(self, claim: Claim, write: Callable[[], Awaitable[None]]) -> None:
        """Write the outcome now, or, while the database is away, again every SETTLE_EVERY seconds
        until it is back (the key stays RUNNING, its retries refused with 409, until then)."""
        try:
            await write()
            return
        except Exception as error:
            if not unreachable(error) and not isinstance(error, CommitOutcomeUnknown):
                raise

        async def again() -> None:
            deadline = asyncio.get_running_loop().time() + TTL.total_seconds()
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(SETTLE_EVERY)
                with contextlib.suppress(Exception):
                    await write()
                    log.debug("idempotency key %d settled after the database came back", claim.record_id)
                    return

        task = asyncio.create_task(again(), name=f"idempotency-settle-{claim.record_id}")
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _write(self, claim: Claim, **values: object) -> None:
        async with self._database.sessions() as session, session.begin():
            await repository.update_claimed(session, claim.record_id, claim.token, **values)

    async def _remove(self, claim: Claim) -> None:
        async with self._database.sessions() as session, session.begin():
            await repository.delete_claimed(session, claim.record_id, claim.token)

    async def sweep(self) -> None:
        """Forget the keys older than a day."""
        async with self._database.sessions() as session, session.begin():
            await repository.delete_expired(session, utcnow())

    async def close(self) -> None:
        for task in list(self._settling):
            task.cancel()
        await asyncio.gather(*self._settling, return_exceptions=True)


def _decide(record: IdempotencyRecord, fingerprint: str, now: datetime) -> str:
    """What a retry of `record` gets: its answer (DONE), a refusal (SAVED, RUNNING) or the claim."""
    if record.fingerprint != fingerprint:
        raise KeyReused("This Idempotency-Key was used with a different request; use a new key for a new request")
    if record.state != RUNNING:
        return record.state
    if record.locked_until > now:
        return RUNNING
    # Abandoned (its process died, or never settled): settled from what it saved.
    return SAVED if record.saved else "take-over"


def _answer(record: IdempotencyRecord) -> Stored:
    if record.state == RUNNING:
        raise KeyInUse("A request with this Idempotency-Key is being processed; retry later")
    if record.state == SAVED:
        created = ", ".join(record.created_rows or []) or "nothing named"
        raise RequestSaved(
            "The first request with this Idempotency-Key was saved, but its answer was lost with the database "
            f"connection; it created: {created}",
            metadata={"created": created},
        )
    return Stored(record.status_code, record.reason, record.message, record.response)
