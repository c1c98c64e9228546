"""The tasks domain as the server starts it: every action, the built-in housekeeping tasks, then
the engine and this replica's planner (server/tasks/domain.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.backup.service import BackupService
from server.chats.service import ChatService
from server.config import Settings
from server.events import EventBus
from server.idempotency.service import IdempotencyKeys
from server.inference.service import InferenceService
from server.memory import Trimmer
from server.plugins import PluginDomain
from server.retrieval.service import KnowledgeBase
from server.storage import Database
from server.tasks.actions.backup import export_action
from server.tasks.actions.housekeeping import housekeeping_action
from server.tasks.actions.prompt import prompt_action
from server.tasks.actions.retrieval import reindex_action
from server.tasks.actions.tools import ToolInvoker, tool_call_action
from server.tasks.domain import TasksDomain
from server.tasks.runner import PrincipalLookup


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """A system action and the built-in task running it every `interval_seconds`."""

    task_id: str
    description: str
    work: Callable[[], Awaitable[Any]]
    interval_seconds: float
    # Work on this replica's own resources: every replica runs it, not one of them.
    every_replica: bool = False

    @property
    def action(self) -> str:
        return "system." + self.task_id.replace("-", "_")  # retrieval-cleanup: system.retrieval_cleanup

    @property
    def name(self) -> str:
        return self.task_id.replace("-", " ").capitalize()  # retrieval-cleanup: Retrieval cleanup


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskParts:
    """What the actions and the housekeeping work on, from the other domains."""

    knowledge: KnowledgeBase
    backups: BackupService
    chats: ChatService
    invoker: ToolInvoker
    plugins: PluginDomain
    idempotency: IdempotencyKeys
    inference: InferenceService
    sample_disk: Callable[[], Awaitable[dict[str, int]]]


def housekeeping(settings: Settings, parts: TaskParts) -> list[Housekeeping]:
    knowledge, inference = parts.knowledge, parts.inference
    trimmer = Trimmer(streaming=lambda: inference.streaming, finished=lambda: inference.finished)

    async def sweep() -> dict[str, int]:
        return {"cleared": await knowledge.cleanup.sweep()}

    return [
        Housekeeping(
            "retrieval-cleanup",
            "Remove the passages and files no row names any more.",
            sweep,
            settings.retrieval_cleanup_seconds,
        ),
        Housekeeping(
            "disk-usage", "Sample the data directory's free space.", parts.sample_disk, 30, every_replica=True
        ),
        Housekeeping(
            "plugins-reconcile",
            "Bring this replica's plugins in step with the plugins table.",
            parts.plugins.reconcile,
            settings.plugins_reconcile_seconds,
            every_replica=True,
        ),
        Housekeeping("idempotency-keys", "Forget idempotency keys past their day.", parts.idempotency.sweep, 600),
        Housekeeping(
            "memory-trim",
            "Give memory freed after a burst of streams back to the system.",
            trimmer.tick,
            5,
            every_replica=True,
        ),
    ]


async def start_tasks(
    settings: Settings, database: Database, events: EventBus, principals: PrincipalLookup, parts: TaskParts
) -> TasksDomain:
    """The actions first, then the built-in tasks, then the engine, heartbeat and planner."""
    tasks = TasksDomain(settings, database, events, principals)
    backups = parts.backups
    tasks.registry.add(reindex_action(parts.knowledge))
    tasks.registry.add(export_action(lambda: backups, settings.backups_path))
    tasks.registry.add(prompt_action(parts.chats, database))
    tasks.registry.add(tool_call_action(parts.invoker))
    for work in housekeeping(settings, parts):
        tasks.registry.add(housekeeping_action(work.action, work.description, work.work))
        tasks.add_system_task(
            work.task_id,
            name=work.name,
            action=work.action,
            interval_seconds=work.interval_seconds,
            every_replica=work.every_replica,
        )
    await tasks.start()
    return tasks
