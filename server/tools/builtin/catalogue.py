"""What this deployment runs: its models and its scheduled tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from server.auth import Principal
from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext


class Models(Protocol):
    def describe_models(self) -> list[dict[str, Any]]: ...


class TaskStatuses(Protocol):
    """Scheduled tasks the caller may see, by whatever runs them (the housekeeping scheduler,
    the tasks domain): each a dict with at least name, and state, last_run, next_run, last_error."""

    async def task_statuses(self, principal: Principal) -> list[dict[str, Any]]: ...


def catalogue_tools(models: Models, tasks: TaskStatuses) -> list[BuiltinTool]:
    async def list_models(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        found = models.describe_models()
        return {"count": len(found), "models": found}

    async def task_status(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        statuses = [_dated(status) for status in await tasks.task_statuses(context.principal)]
        if name := arguments.get("name", "").strip():
            statuses = [status for status in statuses if name in (status.get("id"), status.get("name"))]
            if not statuses:
                raise ToolError(f"No scheduled task {name!r}")
        return {"count": len(statuses), "tasks": statuses}

    return [
        BuiltinTool(
            name="list_models",
            description="The generation models this deployment serves (key, name, backend, context window, tools).",
            parameters=schema({}),
            category="models",
            run=list_models,
        ),
        BuiltinTool(
            name="task_status",
            description="State of the scheduled tasks the caller may see: runs, failures, last and next run.",
            parameters=schema({"name": {"type": "string", "description": "One task's id or name; all when absent"}}),
            category="tasks",
            run=task_status,
        ),
    ]


def _dated(status: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in status.items()}
