"""Which tables a backup holds, in foreign-key order, and their rows as portable JSON values.

A row is a JSON object keyed by column name. Timestamps are ISO 8601 in UTC (SQLite hands them
back without a zone), binary values base64; everything else is JSON as it is (floats written
with Python's shortest repr, which reads back to the same bits).

    encode_row(table, {"id": 1, "created_at": datetime(...)}) == {"id": 1, "created_at": "2026-...+00:00"}
    decode_row(table, encoded) == the original values
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import LargeBinary, Table, UniqueConstraint

# Every table of the schema must be declared on Base before sorted_tables is read.
import server.agents.models
import server.chats.models
import server.idempotency.models
import server.identity.models
import server.openai_api.models
import server.retrieval.models
import server.tasks.models  # noqa: F401
from server.storage import Base
from server.storage.models import UtcDateTime

Row = dict[str, Any]

# Tables that describe one instance, not its data: never exported, never imported.
INSTANCE_LOCAL = {
    "system_settings": "the instance's id and token signing key stay with it",
    "auth_sessions": "sign-in sessions are bound to the instance that issued them",
    "retrieval_cleanup": "lists leftovers of this instance's vector store and disk",
    "plugins": "plugins are code, installed and verified by an administrator: a backup never installs code",
    "idempotency_keys": "a day of this instance's answers to retried requests",
    "task_executors": "the replicas running this instance's scheduler",
    "task_running": "runs in progress on this instance's replicas",
    "task_state": "what this instance's runs of each task did (counters, last run)",
}


def backup_tables() -> list[Table]:
    """The exported tables, parents before children."""
    return [table for table in Base.metadata.sorted_tables if table.name not in INSTANCE_LOCAL]


def table_named(name: str) -> Table | None:
    table = Base.metadata.tables.get(name)
    return None if table is None or name in INSTANCE_LOCAL else table


def primary_key(table: Table, row: Row) -> tuple[Any, ...]:
    return tuple(row[column.name] for column in table.primary_key.columns)


def unique_columns(table: Table) -> list[str]:
    """Single columns that must be unique besides the primary key."""
    names = {column.name for column in table.columns if column.unique}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns) == 1:
            names.add(next(iter(constraint.columns)).name)
    return sorted(names - {column.name for column in table.primary_key.columns})


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()  # aware: UtcDateTime reads them so
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def encode_row(table: Table, values: Any) -> Row:
    """A database row (mapping by column name) as portable JSON values."""
    return {column.name: _encode(values[column.name]) for column in table.columns}


def decode_row(table: Table, row: Row) -> Row:
    """A portable row as the values to write; columns the row lacks are left to their defaults."""
    decoded: Row = {}
    for column in table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        if value is not None and isinstance(column.type, UtcDateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value)
        decoded[column.name] = value
    return decoded
