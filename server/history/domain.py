"""The history domain as the server assembles it: the journal of streams, its servicer."""

from __future__ import annotations

from dataclasses import dataclass

from relais.v1 import history_pb2, history_pb2_grpc

from server.config import Settings
from server.history.repository import MemoryJournal, RedisJournal
from server.history.service import Journal
from server.history.servicer import HistoryServicer
from server.registration import ServiceRegistration, register


@dataclass(frozen=True, slots=True)
class HistoryDomain:
    journal: Journal

    def registrations(self) -> list[ServiceRegistration]:
        return [register(history_pb2, history_pb2_grpc, "HistoryService", HistoryServicer(self.journal))]

    async def close(self) -> None:
        await self.journal.close()


def start_history(settings: Settings) -> HistoryDomain:
    """The journal in Redis when configured (every replica replays every stream), else in memory."""
    store = (
        RedisJournal(settings.redis_url, ttl=settings.journal_ttl_seconds, prefix=settings.journal_prefix)
        if settings.redis_url
        else MemoryJournal(settings.journal_ttl_seconds, settings.journal_memory_bytes)
    )
    return HistoryDomain(Journal(store))
