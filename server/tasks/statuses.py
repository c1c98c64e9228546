"""The scheduled tasks a caller may see, as the tools' `task_status` reads them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.auth import Principal
from server.tasks.domain import TasksDomain

# Tasks the tool reports at most (the caller's own; every task for administrators).
LIMIT = 100


class TaskStatuses:
    """Statuses of the tasks `domain()` runs (None until the tasks domain has started)."""

    def __init__(self, domain: Callable[[], TasksDomain | None]) -> None:
        self._domain = domain

    async def task_statuses(self, principal: Principal) -> list[dict[str, Any]]:
        domain = self._domain()
        if domain is None:
            return []
        page = await domain.service.list_tasks(principal, skip=0, offset=0, limit=LIMIT, admin=principal.is_admin)
        statuses = []
        for view in page.items:
            state = view.state
            statuses.append(
                {
                    "id": view.id,
                    "name": view.name,
                    "kind": "system" if view.system else "user",
                    "action": view.action,
                    "trigger": view.trigger.kind,
                    "state": view.status,
                    "runs": state.success_count + state.failure_count,
                    "failures": state.failure_count,
                    "last_run": state.last_run_at,
                    "next_run": view.next_run,
                    "last_error": state.last_error,
                }
            )
        return statuses
