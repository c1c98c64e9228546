"""A database that goes away: what its errors mean to a client, and one log line per outage.

While PostgreSQL restarts or is stopped, every statement fails with a connection error
(psycopg's OperationalError, "server closed the connection unexpectedly", "connection
refused", "the database system is shutting down"). Those are not the request's fault nor a
bug: they mean UNAVAILABLE (HTTP 503 with Retry-After), and the operator needs to hear it once
when the outage begins and once when it ends, not once per refused request.

A connection lost *during* COMMIT is different: the server may have committed or not, and
nobody can tell the client which. It is COMMIT_OUTCOME_UNKNOWN; a creating request sent with
an Idempotency-Key is safe to retry (server/idempotency/).

    outage = Outage("postgresql")
    error = outage.translate(exception)   # DatabaseUnavailable, or None for other errors
    outage.recovered()                    # a connection was made: logs the outage's end once
"""

from __future__ import annotations

import logging
import sqlite3
import time

from sqlalchemy import exc

from server.errors import Unavailable

log = logging.getLogger("relais.storage")

# SQLite's transient failures (a writer holding the lock past busy_timeout, the file unreadable).
_SQLITE_TRANSIENT = ("database is locked", "unable to open database file", "disk i/o error")


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached now; nothing was changed. Retry in a moment."""

    reason = "DATABASE_UNAVAILABLE"
    retry_after = 2
    reported = True  # logged once per outage by Outage


class CommitOutcomeUnknown(DatabaseUnavailable):
    """The connection was lost while committing: the change may or may not have been saved."""

    reason = "COMMIT_OUTCOME_UNKNOWN"


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached or the connection was lost, as
    opposed to a refused statement (a constraint, a bug) which is no outage."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_SQLITE_TRANSIENT)
    # psycopg (3): connection failures, administrator shutdown, server crash, cannot connect now.
    module = type(error).__module__
    if module.startswith("psycopg"):
        import psycopg

        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return False


def summary(error: BaseException) -> str:
    """The first line of the driver's message, without SQLAlchemy's long tail."""
    original = error.orig if isinstance(error, exc.DBAPIError) and error.orig is not None else error
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}"


# A failure this soon after the database came back continues the same outage (a server still
# starting may accept one connection and refuse the next).
RELAPSE = 1.0


class Outage:
    """The database's reachability as calls find out: the first failure of an outage is logged,
    the refusals after it counted, and the end logged with their count."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.since: float | None = None
        self.refused = 0
        self._back_at = -RELAPSE
        self._relapsed = False

    def translate(self, error: BaseException, *, committing: bool = False) -> DatabaseUnavailable | None:
        """The domain error `error` means, or None when it is not about reaching the database."""
        if not unreachable(error):
            return None
        self.failed(error)
        if committing:
            return CommitOutcomeUnknown(
                "The connection to the database was lost while saving: the change may or may not have been "
                "saved. Retry with the same Idempotency-Key to be safe"
            )
        return DatabaseUnavailable("The database is unavailable; retry shortly")

    def failed(self, error: BaseException) -> None:
        self.refused += 1
        if self.since is not None:
            return
        self.since = time.monotonic()
        if self.since - self._back_at < RELAPSE:
            self._relapsed = True
        else:
            log.error("%s unreachable (%s); calls answer 503 until it is back", self._name, summary(error))

    def recovered(self) -> None:
        if self.since is None:
            return
        now = time.monotonic()
        if not self._relapsed:
            log.warning(
                "%s reachable again after %.1fs; %d operations refused meanwhile",
                self._name,
                now - self.since,
                self.refused,
            )
            self.refused = 0
        self.since, self._back_at, self._relapsed = None, now, False
