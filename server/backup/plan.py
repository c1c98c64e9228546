"""The plan of an import: what each archived row does to this instance.

Rows are matched by primary key. A row the instance lacks is inserted; one it has the same is
skipped; one it has otherwise is updated (policy "replace") or left as it is (policy "keep",
listed as a conflict). A row whose unique value (an email, a name, a key hash) another row of
the instance already holds cannot be written: it is a blocking conflict, and so is every
archived row that refers to a blocked row (a chat of a user that was not imported).
Ids are taken to identify the same entities: merging suits an instance and backups of its
own lineage, or an empty instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from server.backup.tables import Row, backup_tables, encode_row, primary_key, unique_columns

Policy = Literal["keep", "replace"]
SOURCE_TABLES = ("documents", "memories", "corpus_files")
QUERY_BATCH = 500
# Conflicts listed per table; beyond, only counted.
MAX_LISTED = 100


@dataclass(slots=True, kw_only=True)
class TableChanges:
    table: Table
    insert: list[Row] = field(default_factory=list)
    update: list[Row] = field(default_factory=list)
    skip: int = 0
    conflicts: list[str] = field(default_factory=list)
    # Archive keys not written, for rows that refer to them.
    blocked: set[tuple[Any, ...]] = field(default_factory=set)

    def conflict(self, key: tuple[Any, ...], reason: str, *, blocking: bool) -> None:
        if len(self.conflicts) < MAX_LISTED:
            self.conflicts.append(f"{self.table.name} {_key_text(key)}: {reason}")
        if blocking:
            self.blocked.add(key)


@dataclass(slots=True, kw_only=True)
class Sources:
    """Source keys the import brings (their passages and files are restored) and those its
    updates replace (theirs are removed once it commits)."""

    new: set[str] = field(default_factory=set)
    replaced: set[str] = field(default_factory=set)
    documents: dict[str, int] = field(default_factory=dict)


def _key_text(key: tuple[Any, ...]) -> str:
    return ",".join(str(part) for part in key)


async def _existing(session: AsyncSession, table: Table, rows: Sequence[Row]) -> dict[tuple[Any, ...], Row]:
    columns = list(table.primary_key.columns)
    found: dict[tuple[Any, ...], Row] = {}
    for offset in range(0, len(rows), QUERY_BATCH):
        keys = [primary_key(table, row) for row in rows[offset : offset + QUERY_BATCH]]
        result = await session.execute(select(table).where(tuple_(*columns).in_(keys)))
        for current in result.mappings():
            encoded = encode_row(table, current)
            found[primary_key(table, encoded)] = encoded
    return found


async def _holders(session: AsyncSession, table: Table, column: str, values: list[Any]) -> dict[Any, tuple[Any, ...]]:
    """Which instance row holds each of `values` in `column`."""
    keys = list(table.primary_key.columns)
    holders: dict[Any, tuple[Any, ...]] = {}
    for offset in range(0, len(values), QUERY_BATCH):
        part = values[offset : offset + QUERY_BATCH]
        result = await session.execute(select(table.c[column], *keys).where(table.c[column].in_(part)))
        for value, *key in result:
            holders[value] = tuple(key)
    return holders


def _refers_to_blocked(table: Table, row: Row, plans: dict[str, TableChanges]) -> str | None:
    for column in table.columns:
        for foreign in column.foreign_keys:
            parent = plans.get(foreign.column.table.name)
            if parent is not None and row.get(column.name) is not None and (row[column.name],) in parent.blocked:
                return f"refers to {parent.table.name} {row[column.name]}, which is not imported"
    return None


async def plan_table(
    session: AsyncSession, table: Table, rows: list[Row], policy: Policy, plans: dict[str, TableChanges]
) -> TableChanges:
    changes = TableChanges(table=table)
    existing = await _existing(session, table, rows)
    uniques = {
        column: await _holders(session, table, column, [row[column] for row in rows if row.get(column) is not None])
        for column in unique_columns(table)
    }
    for row in rows:
        key = primary_key(table, row)
        if reason := _refers_to_blocked(table, row, plans):
            changes.conflict(key, reason, blocking=True)
            continue
        clash = next(
            (
                column
                for column, holders in uniques.items()
                if row.get(column) is not None and holders.get(row[column], key) != key
            ),
            None,
        )
        if clash is not None:
            holder = _key_text(uniques[clash][row[clash]])
            changes.conflict(key, f"its {clash} belongs to {table.name} {holder} here", blocking=True)
            continue
        current = existing.get(key)
        if current is None:
            changes.insert.append(row)
        elif all(current.get(name) == value for name, value in row.items()):
            changes.skip += 1
        elif policy == "replace":
            changes.update.append(row)
        else:
            changes.skip += 1
            changes.conflict(key, "differs here; kept as it is (policy keep)", blocking=False)
    return changes


async def plan_rows(session: AsyncSession, rows: dict[str, list[Row]], policy: Policy) -> list[TableChanges]:
    plans: dict[str, TableChanges] = {}
    for table in backup_tables():
        plans[table.name] = await plan_table(session, table, rows.get(table.name, []), policy, plans)
    return list(plans.values())


async def sources(session: AsyncSession, changes: list[TableChanges]) -> Sources:
    found = Sources()
    for plan in changes:
        if plan.table.name not in SOURCE_TABLES:
            continue
        for row in plan.insert:
            found.new.add(row["source_key"])
        if plan.update:
            current = await _existing(session, plan.table, plan.update)
            for row in plan.update:
                previous = current[primary_key(plan.table, row)]["source_key"]
                if previous != row["source_key"]:
                    found.new.add(row["source_key"])
                    found.replaced.add(previous)
        if plan.table.name == "documents":
            for row in [*plan.insert, *plan.update]:
                if row["source_key"] in found.new:
                    found.documents[row["source_key"]] = int(row["file_size"])
    return found
