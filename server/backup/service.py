"""Backups of an instance, and their import.

    backups = BackupService(database, knowledge, settings=settings)
    async for piece in backups.export():           # the ZIP, streamed
        ...
    path = await backups.export_to(Path("/srv/backups"), keep=7)     # scheduled exports
    outcome = await backups.import_stream(pieces, dry_run=True, policy="keep")   # or import_file(path, ...)

An import is checked whole first (archive structure and limits, manifest, every entry's
sha256, the schema revision), then planned (server/backup/plan.py); `dry_run` stops there.
Otherwise it is applied (server/backup/apply.py), after a safety export when it changes
existing rows. One import at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from server.backup.apply import Target, apply_plan
from server.backup.archive import FORMAT_VERSION, ArchiveLimits, ArchiveRefused, VerifiedArchive, read_archive
from server.backup.export import ExportSource, write_archive
from server.backup.plan import Policy, Sources, TableChanges, plan_rows, sources
from server.backup.rows import head_revision, passages, read_rows
from server.backup.settings_view import differences, effective_settings
from server.config import Settings
from server.errors import FieldViolation, ValidationFailed
from server.retrieval.service import KnowledgeBase
from server.storage import Database
from server.system.service import relais_version

log = logging.getLogger("relais.backup")

ARCHIVE_PREFIX = "relais-backup"
SAFETY_PREFIX = "relais-safety"


def embedding_model(settings: Settings) -> str:
    """The embedding model's name as archives record it (vectors are reused only when equal)."""
    if settings.embedding_backend == "local":
        return "local:all-MiniLM-L6-v2"
    return f"triton:{settings.embedding_model}"


@dataclass(slots=True, kw_only=True)
class ImportOutcome:
    format_version: str
    relais_version: str
    dry_run: bool
    policy: Policy
    archive_revision: str
    current_revision: str
    migrated: bool
    archive_dialect: str
    tables: list[TableChanges]
    vectors_restore: int = 0
    vectors_reembed: int = 0
    files_write: int = 0
    files_bytes: int = 0
    settings: list[tuple[str, str, str]] = field(default_factory=list)
    safety_export: str = ""


class BackupService:
    def __init__(
        self,
        database: Database,
        knowledge: KnowledgeBase,
        *,
        settings: Settings,
        limits: ArchiveLimits | None = None,
        recent_logs: Callable[[], bytes] | None = None,
    ) -> None:
        self._database = database
        self._recent_logs = recent_logs
        self._knowledge = knowledge
        self._settings = settings
        self._limits = limits or ArchiveLimits()
        self._work = settings.data_dir / "backups" / "work"
        self._importing = asyncio.Lock()

    # ------------------------------------------------------------------ export

    def _source(self) -> ExportSource:
        return ExportSource(
            database=self._database,
            knowledge=self._knowledge,
            data_dir=self._settings.data_dir,
            relais_version=relais_version(),
            embedding_model=embedding_model(self._settings),
            settings=effective_settings(self._settings),
            recent_logs=self._recent_logs,
        )

    def export(self, *, with_logs: bool = True) -> AsyncIterator[bytes]:
        """The archive of the instance as it is now, in pieces as they are written."""
        return write_archive(self._source(), with_logs=with_logs)

    async def export_to(self, directory: Path, *, keep: int = 7, prefix: str = ARCHIVE_PREFIX) -> Path:
        """Write an archive into `directory` (relais-backup-<UTC time>.zip, complete or absent),
        then delete the oldest archives of that prefix beyond the `keep` newest."""
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = directory / f"{prefix}-{stamp}.zip"
        partial = final.with_name(final.name + ".part")
        handle = await asyncio.to_thread(open, partial, "wb")
        try:
            async for piece in self.export():
                await asyncio.to_thread(handle.write, piece)
            await asyncio.to_thread(handle.flush)
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        partial.replace(final)
        await asyncio.to_thread(_prune, directory, prefix, keep)
        log.info("backup written to %s", final)
        return final

    # ------------------------------------------------------------------ import

    async def import_stream(
        self, pieces: AsyncIterator[bytes], *, dry_run: bool = True, policy: Policy = "keep"
    ) -> ImportOutcome:
        """Import an archive received in pieces (an upload): kept on disk as it arrives, never
        whole in memory, and refused past the limit on its size."""
        await asyncio.to_thread(self._work.mkdir, parents=True, exist_ok=True)
        path = self._work / f"import-{uuid.uuid4().hex}.zip"
        try:
            await _receive(pieces, path, self._limits.max_archive_bytes)
            return await self.import_file(path, dry_run=dry_run, policy=policy)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def import_file(self, path: Path, *, dry_run: bool = True, policy: Policy = "keep") -> ImportOutcome:
        """Import the archive at `path` (read in place, never loaded whole)."""
        async with self._importing:
            await asyncio.to_thread(self._work.mkdir, parents=True, exist_ok=True)
            archive = await asyncio.to_thread(read_archive, path, self._limits)
            try:
                return await self._import(archive, dry_run=dry_run, policy=policy)
            finally:
                archive.close()

    async def _import(self, archive: VerifiedArchive, *, dry_run: bool, policy: Policy) -> ImportOutcome:
        manifest = archive.manifest
        rows, migrated = await asyncio.to_thread(read_rows, archive, self._work)
        async with self._database.sessions() as session:
            changes = await plan_rows(session, rows, policy)
            found = await sources(session, changes)
        same = manifest["embedding"] == {
            "model": embedding_model(self._settings),
            "dimension": self._knowledge.embedding_dimension,
        }
        outcome = ImportOutcome(
            format_version=FORMAT_VERSION,
            relais_version=str(manifest.get("relais_version", "")),
            dry_run=dry_run,
            policy=policy,
            archive_revision=str(manifest["alembic_revision"]),
            current_revision=head_revision(),
            migrated=migrated,
            archive_dialect=str(manifest["dialect"]),
            tables=changes,
            files_write=len(found.documents),
            files_bytes=sum(found.documents.values()),
            settings=self._setting_differences(archive),
        )
        restorable = await asyncio.to_thread(_count_passages, archive, found)
        if same:
            outcome.vectors_restore = restorable
        else:
            outcome.vectors_reembed = restorable
        if not dry_run:
            await self._apply(archive, changes, found, same, outcome)
        return outcome

    async def _apply(
        self, archive: VerifiedArchive, changes: list[TableChanges], found: Sources, same: bool, outcome: ImportOutcome
    ) -> None:
        if any(plan.update for plan in changes):
            safety = await self.export_to(self._settings.backups_path, keep=3, prefix=SAFETY_PREFIX)
            outcome.safety_export = str(safety)
        target = Target(database=self._database, knowledge=self._knowledge, same_embedding=same)
        await apply_plan(target, archive, changes, found)
        log.info(
            "backup imported: %d rows inserted, %d updated",
            sum(len(plan.insert) for plan in changes),
            sum(len(plan.update) for plan in changes),
        )

    def _setting_differences(self, archive: VerifiedArchive) -> list[tuple[str, str, str]]:
        if not archive.has("config/settings.json"):
            return []
        archived = json.loads(archive.read("config/settings.json"))
        return differences(archived, effective_settings(self._settings))


def _count_passages(archive: VerifiedArchive, found: Sources) -> int:
    """Passages of the sources the import brings; refuses an archive whose count disagrees."""
    total = restorable = 0
    for row in passages(archive):
        total += 1
        restorable += row["source"] in found.new
    declared = archive.manifest["counts"].get("passages")
    if declared != total:
        raise ArchiveRefused(f"vectors/passages.jsonl holds {total} passages, the manifest says {declared}")
    return restorable


async def _receive(pieces: AsyncIterator[bytes], path: Path, limit: int) -> None:
    size = 0
    handle = await asyncio.to_thread(open, path, "wb")
    try:
        async for piece in pieces:
            size += len(piece)
            if size > limit:
                raise ArchiveRefused(f"it is larger than {limit} bytes")
            await asyncio.to_thread(handle.write, piece)
    finally:
        handle.close()
    if size == 0:
        raise ValidationFailed([FieldViolation(field="file", message="is required (the backup ZIP)")])


def _prune(directory: Path, prefix: str, keep: int) -> None:
    archives = sorted(directory.glob(f"{prefix}-*.zip"))
    for old in archives[: max(0, len(archives) - keep)]:
        old.unlink(missing_ok=True)
