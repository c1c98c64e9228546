"""The backup domain as the server assembles it: exports and imports, the servicer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relais.v1 import backup_pb2, backup_pb2_grpc

from server.backup.service import BackupService
from server.backup.servicer import BackupServicer
from server.config import Settings
from server.registration import ServiceRegistration, register
from server.retrieval.service import KnowledgeBase
from server.storage import Database


@dataclass(frozen=True, slots=True)
class BackupDomain:
    service: BackupService

    def registrations(self) -> list[ServiceRegistration]:
        return [register(backup_pb2, backup_pb2_grpc, "BackupService", BackupServicer(self.service))]


def start_backup(
    settings: Settings, database: Database, knowledge: KnowledgeBase, *, recent_logs: Callable[[], bytes]
) -> BackupDomain:
    """Backups of the database and the knowledge base's files; `recent_logs()`: this process's
    recent log lines, for an archive's logs/relais.log."""
    return BackupDomain(BackupService(database, knowledge, settings=settings, recent_logs=recent_logs))
