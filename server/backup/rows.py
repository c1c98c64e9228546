"""The archive's rows at this server's schema: read, counted against the manifest, and, for an
archive written at an older revision, migrated on the way (restored into a scratch SQLite
database at the archive's revision, upgraded to head, read back)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, select

from server.backup.archive import ArchiveRefused, VerifiedArchive
from server.backup.tables import Row, backup_tables, decode_row, encode_row, table_named
from server.errors import InvalidArgument
from server.storage.engine import alembic_config


class UnknownRevision(InvalidArgument):
    pass


def head_revision() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def check_revision(revision: str) -> bool:
    """Whether rows at `revision` need migrating; refuses a revision this server does not have."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if revision == head:
        return False
    known = {step.revision for step in script.walk_revisions()}
    if revision not in known:
        raise UnknownRevision(
            f"The backup was written at schema revision {revision!r}, which this server does not know "
            f"(its head is {head!r}): it comes from a newer Relais. Import it with that version or a later one."
        )
    return True


def _archived_tables(archive: VerifiedArchive) -> list[str]:
    names = []
    for entry in archive.manifest["entries"]:
        path = str(entry["path"])
        if path.startswith("db/"):
            if not path.endswith(".jsonl") or "/" in path[3:]:
                raise ArchiveRefused(f"entry {path!r} is not a table file")
            names.append(path[3:-6])
    return names


def _counted(archive: VerifiedArchive, name: str) -> list[Row]:
    rows = list(archive.lines(f"db/{name}.jsonl"))
    declared = archive.manifest["counts"].get(name)
    if declared != len(rows):
        raise ArchiveRefused(f"db/{name}.jsonl holds {len(rows)} rows, the manifest says {declared}")
    return rows


def read_rows(archive: VerifiedArchive, scratch: Path) -> tuple[dict[str, list[Row]], bool]:
    """Rows per table name, at head; and whether they were migrated."""
    migrate = check_revision(str(archive.manifest["alembic_revision"]))
    names = _archived_tables(archive)
    if not migrate:
        for name in names:
            if table_named(name) is None:
                raise ArchiveRefused(f"db/{name}.jsonl is not a table of this schema")
        return {name: _counted(archive, name) for name in names}, False
    return _migrated(archive, names, scratch), True


def _migrated(archive: VerifiedArchive, names: list[str], scratch: Path) -> dict[str, list[Row]]:
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"migrate-{uuid.uuid4().hex}.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), str(archive.manifest["alembic_revision"]))
            old = MetaData()
            old.reflect(connection)
            for name in names:
                if name not in old.tables:
                    raise ArchiveRefused(
                        f"db/{name}.jsonl is not a table at revision {archive.manifest['alembic_revision']}"
                    )
            for table in old.sorted_tables:
                if table.name in names and (rows := _counted(archive, table.name)):
                    connection.execute(table.insert(), [_for_old(table, row) for row in rows])
            command.upgrade(alembic_config(connection), "head")
        with engine.connect() as connection:
            return {
                table.name: [encode_row(table, row) for row in connection.execute(select(table)).mappings()]
                for table in backup_tables()
            }
    finally:
        engine.dispose()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _for_old(table: Any, row: Row) -> Row:
    """A portable row as values for the reflected, older table (decoded by today's column types
    where today's table has the column, as is otherwise)."""
    today = table_named(table.name)
    decoded = decode_row(today, row) if today is not None else dict(row)
    return {
        column.name: decoded.get(column.name, row.get(column.name)) for column in table.columns if column.name in row
    }


def passages(archive: VerifiedArchive) -> Iterator[dict[str, Any]]:
    return archive.lines("vectors/passages.jsonl")
