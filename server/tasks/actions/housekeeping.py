"""The server's own periodic work, run as built-in (system) tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.tasks.actions import Action, ActionContext

NO_PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False}


def housekeeping_action(name: str, description: str, work: Callable[[], Awaitable[Any]]) -> Action:
    """A system-only action doing `work()` in one step."""

    async def step() -> Any:
        return await work()

    async def run(context: ActionContext) -> Any:
        return await context.step(name.partition(".")[2], step)

    return Action(
        name=name,
        description=description,
        params_schema=NO_PARAMS,
        permission="*",
        run=run,
        system_only=True,
    )
