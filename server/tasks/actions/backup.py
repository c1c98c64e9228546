"""backup.export: write a backup archive into data_dir/backups/<directory>, keeping the newest N."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.backup.service import BackupService
from server.errors import Unavailable
from server.tasks.actions import Action, ActionContext

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "keep": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": 7,
            "description": "Archives of this directory to keep; older ones are deleted.",
        },
        "directory": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_-]{1,64}$",
            "default": "scheduled",
            "description": "Folder under the data directory's backups/ folder.",
        },
    },
    "additionalProperties": False,
}


def export_action(backups: Callable[[], BackupService | None], root: Path) -> Action:
    async def export(directory: str, keep: int) -> dict[str, Any]:
        service = backups()
        if service is None:
            raise Unavailable("Backups are not available on this server yet")
        path = await service.export_to(root / directory, keep=keep)
        return {"path": str(path), "bytes": path.stat().st_size}

    async def run(context: ActionContext) -> dict[str, Any]:
        params = context.params
        directory = str(params.get("directory", "scheduled"))
        return await context.step("export", export, directory, int(params.get("keep", 7)))

    return Action(
        name="backup.export",
        description="Write a backup archive (as GET /backup/export) under the data directory, keeping the newest N.",
        params_schema=SCHEMA,
        permission="*",
        run=run,
    )
