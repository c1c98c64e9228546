"""The built-in tools as one in-process MCP server.

Each tool is a `BuiltinTool`: a JSON Schema, hints, and an async `run(context, arguments)`
that returns text or a JSON-able object, or raises `ToolError` (the call then answers
`isError` with the message). The server finds whom a call runs for through the caller-context
token the registry puts in the call's `_meta` (see registry.CallContexts): a call without a
valid token, which only code inside this process could make, is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp.server import Server

from server.errors import DomainError
from server.tools.registry import ADMIN_META, CATEGORY_META, CallContexts, CallerContext

log = logging.getLogger("relais.tools.builtin")

Result = str | dict[str, Any] | list[Any]
Runner = Callable[[CallerContext, dict[str, Any]], Awaitable[Result]]


class ToolError(Exception):
    """A tool could not do what was asked; the message tells the model (and the user) why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltinTool:
    name: str
    description: str
    parameters: dict[str, Any]
    category: str
    run: Runner
    read_only: bool = True
    destructive: bool = False
    admin_only: bool = False

    def listing(self) -> mcp_types.Tool:
        return mcp_types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.parameters,
            annotations=mcp_types.ToolAnnotations(
                read_only_hint=self.read_only, destructive_hint=self.destructive, open_world_hint=self.admin_only
            ),
            _meta={CATEGORY_META: self.category, ADMIN_META: self.admin_only},
        )


def schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """An object schema that refuses unknown arguments."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _text(value: Result) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def _failure(message: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


def builtin_server(tools: Sequence[BuiltinTool], contexts: CallContexts) -> Server[Any]:
    by_name = {tool.name: tool for tool in tools}

    async def list_tools(ctx: Any, params: Any) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(tools=[tool.listing() for tool in tools])

    async def call_tool(ctx: Any, params: mcp_types.CallToolRequestParams) -> mcp_types.CallToolResult:
        context = contexts.lookup(ctx.meta)
        if context is None:
            return _failure("Built-in tools run for a caller of Relais only")
        tool = by_name.get(params.name)
        if tool is None:
            return _failure(f"No tool {params.name!r}")
        try:
            value = await tool.run(context, dict(params.arguments or {}))
        except ToolError as error:
            return _failure(str(error))
        except DomainError as error:
            # A domain refusal (not found, validation) says why.
            return _failure(error.message)
        except Exception:
            log.exception("built-in tool %s failed", params.name)
            return _failure(f"Tool {params.name!r} failed unexpectedly")
        structured = value if isinstance(value, dict) else None
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=_text(value))], structured_content=structured
        )

    return Server("relais-builtin", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
