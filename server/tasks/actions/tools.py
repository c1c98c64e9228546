"""tool.call: call a tool the owner may call, with arguments, through the tool registry.

The registry (server/tools/) is another domain; this module only needs the ToolInvoker seam
below. The invoker decides, from the principal, whether the tool may be called: it is given the
owner's principal as it is when the run begins, so a tool the owner lost is refused then.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from server.auth import Principal
from server.errors import DomainError, FieldViolation, ValidationFailed
from server.tasks.actions import Action, ActionContext, summary

TOOL_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool": {
            "type": "string",
            "pattern": TOOL_NAME,
            "description": "The tool's name, as the tool registry lists it.",
        },
        "arguments": {"type": "object", "default": {}, "description": "The tool's arguments (its own input schema)."},
    },
    "required": ["tool"],
    "additionalProperties": False,
}


class ToolInvoker(Protocol):
    """Calls tools as a principal (implemented by the tool registry)."""

    async def call(self, principal: Principal, name: str, params: dict[str, Any]) -> Any:
        """The tool's result; NotFound for an unknown tool, PermissionDenied for one the principal
        may not call, ValidationFailed for arguments it refuses."""
        ...

    async def check(self, principal: Principal, name: str, params: dict[str, Any]) -> None:
        """Raise as `call` would for this principal, tool and arguments, without calling it."""
        ...


def tool_call_action(invoker: ToolInvoker) -> Action:
    async def check(principal: Principal, params: dict[str, Any]) -> None:
        try:
            await invoker.check(principal, str(params["tool"]), dict(params.get("arguments") or {}))
        except ValidationFailed as error:
            violations = [
                FieldViolation(field=f"params.arguments.{v.field}".rstrip("."), message=v.message)
                for v in error.violations
            ]
            raise ValidationFailed(violations) from error
        except DomainError as error:
            raise ValidationFailed([FieldViolation(field="params.tool", message=error.message)]) from error

    async def call(principal: Principal, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"tool": tool, **summary(await invoker.call(principal, tool, arguments))}

    async def run(context: ActionContext) -> dict[str, Any]:
        tool = str(context.params["tool"])
        arguments = dict(context.params.get("arguments") or {})
        step = re.sub(r"[^A-Za-z0-9_.-]", "_", tool)
        return await context.step(f"call {step}", call, context.principal, tool, arguments)

    return Action(
        name="tool.call",
        description="Call a tool you may call, with arguments; the tool's result is kept in the run's output.",
        params_schema=SCHEMA,
        run=run,
        check=check,
    )
