"""BackupService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from google.api import httpbody_pb2
from relais.v1 import backup_pb2, backup_pb2_grpc

from server.backup.plan import Policy
from server.backup.service import ARCHIVE_PREFIX, BackupService, ImportOutcome
from server.errors import FieldViolation, ValidationFailed

POLICIES: dict[int, Policy] = {
    backup_pb2.CONFLICT_POLICY_UNSPECIFIED: "keep",
    backup_pb2.CONFLICT_POLICY_KEEP: "keep",
    backup_pb2.CONFLICT_POLICY_REPLACE: "replace",
}
POLICY_ENUMS = {"keep": backup_pb2.CONFLICT_POLICY_KEEP, "replace": backup_pb2.CONFLICT_POLICY_REPLACE}


def plan_message(outcome: ImportOutcome) -> backup_pb2.ImportPlan:
    return backup_pb2.ImportPlan(
        archive_revision=outcome.archive_revision,
        current_revision=outcome.current_revision,
        migrated=outcome.migrated,
        archive_dialect=outcome.archive_dialect,
        conflict_policy=POLICY_ENUMS[outcome.policy],
        tables=[
            backup_pb2.TablePlan(
                table=plan.table.name,
                insert=len(plan.insert),
                update=len(plan.update),
                skip=plan.skip,
                conflicts=plan.conflicts,
            )
            for plan in outcome.tables
        ],
        vectors_restore=outcome.vectors_restore,
        vectors_reembed=outcome.vectors_reembed,
        files_write=outcome.files_write,
        files_bytes=outcome.files_bytes,
        settings=[
            backup_pb2.SettingDifference(name=name, archived=archived, current=current)
            for name, archived, current in outcome.settings
        ],
        safety_export=outcome.safety_export,
    )


class BackupServicer(backup_pb2_grpc.BackupServiceServicer):
    def __init__(self, backups: BackupService) -> None:
        self._backups = backups

    async def ExportBackup(
        self, request: backup_pb2.ExportBackupRequest, context: Any
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        await context.send_initial_metadata(
            [("content-disposition", f'attachment; filename="{ARCHIVE_PREFIX}-{stamp}.zip"')]
        )
        async for piece in self._backups.export(with_logs=not request.without_logs):
            yield httpbody_pb2.HttpBody(content_type="application/zip", data=piece)

    async def ImportBackup(
        self, requests: AsyncIterator[backup_pb2.ImportBackupRequest], context: Any
    ) -> backup_pb2.ImportBackupResponse:
        """The first message's options, and the file as the concatenation of every message's piece."""
        first = await anext(aiter(requests), None)
        if first is None or not first.HasField("file"):
            raise ValidationFailed([FieldViolation(field="file", message="is required (the backup ZIP)")])
        if first.conflict_policy not in POLICIES:
            raise ValidationFailed([FieldViolation(field="conflict_policy", message="must be keep or replace")])

        async def pieces() -> AsyncIterator[bytes]:
            yield first.file.data
            async for request in requests:
                yield request.file.data

        dry_run = first.dry_run if first.HasField("dry_run") else True
        outcome = await self._backups.import_stream(pieces(), dry_run=dry_run, policy=POLICIES[first.conflict_policy])
        return backup_pb2.ImportBackupResponse(
            version=outcome.format_version,
            plan=plan_message(outcome),
            dry_run=outcome.dry_run,
            relais_version=outcome.relais_version,
        )
