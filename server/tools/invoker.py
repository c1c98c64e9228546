"""Tools called on someone's behalf outside a conversation: the tasks' `tool.call` action."""

from __future__ import annotations

from typing import Any

from server.auth import Principal
from server.errors import FailedPrecondition
from server.tools.registry import CallerContext, InvalidToolArguments, ToolRegistry, argument_violations


class RegistryInvoker:
    """Calls tools of `registry` as a principal, with the same checks as GET/POST /tools."""

    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry

    async def check(self, principal: Principal, name: str, params: dict[str, Any]) -> None:
        """NotFound for a tool the principal may not use, InvalidToolArguments for bad arguments."""
        tool = self._registry.get(principal, name)
        if violations := argument_violations(tool, params):
            raise InvalidToolArguments(violations, f"Arguments do not match the parameters of tool {name!r}")

    async def call(self, principal: Principal, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The tool's result; a tool that fails makes the run fail with its message."""
        outcome = await self._registry.call(CallerContext(principal=principal), name, params)
        if outcome.is_error:
            raise FailedPrecondition(outcome.content)
        return {"content": outcome.content, "structured": outcome.structured, "seconds": round(outcome.seconds, 3)}
