"""Every tool the server can call, whatever MCP server it comes from, and who may call it.

Names: a tool keeps its MCP name (characters other than letters, digits, `_` and `-` become
`_`, as OpenAI-style function names require); when tools of two sources share a name, the
built-in one keeps it and the others become "<source>__<name>". Permissions: a tool is
granted by `tools:<name>` or, unless it is administrators' only, by `tools:*`; an
administrators' tool also needs the admin role. Checked on every listing and every call.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import jsonschema
import mcp_types
from mcp.shared.exceptions import MCPError

from server.auth import Principal
from server.errors import FieldViolation, NotFound, ValidationFailed
from server.tools.config import BUILTIN_SOURCE, ToolSettings
from server.tools.sources import Source, SourceSpec, SourceState, describe

# The _meta key carrying the caller's context token to trusted (in-process) sources, and the
# keys those sources describe their tools with.
CALL_META = "relais/call"
CATEGORY_META = "relais/category"
ADMIN_META = "relais/admin_only"
WILDCARD = "tools:*"
_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerContext:
    """Who a tool runs for, handed to the built-in tools."""

    principal: Principal
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredTool:
    name: str
    source: str
    # The tool's name on its MCP server.
    original: str
    description: str
    parameters: dict[str, Any]
    category: str
    title: str = ""
    read_only: bool = False
    destructive: bool = False
    admin_only: bool = False

    @property
    def permission(self) -> str:
        return f"tools:{self.name.lower()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolOutcome:
    tool: str
    content: str
    is_error: bool
    structured: dict[str, Any] | None = None
    seconds: float = 0.0


class InvalidToolArguments(ValidationFailed):
    """Arguments that do not match a tool's JSON Schema (HTTP 422, each violation named)."""


def may_use(principal: Principal, tool: RegisteredTool) -> bool:
    if tool.admin_only:
        return principal.is_admin and principal.can(tool.permission)
    return principal.can(tool.permission) or principal.can(WILDCARD)


def exposed_name(name: str) -> str:
    return _NAME.sub("_", name)[:64] or "tool"


@functools.lru_cache(maxsize=512)
def _validator(schema: str) -> jsonschema.Draft202012Validator:
    """A compiled validator per schema text: compiling costs more than validating."""
    return jsonschema.Draft202012Validator(json.loads(schema))


def argument_violations(tool: RegisteredTool, arguments: Mapping[str, Any]) -> list[FieldViolation]:
    """Where `arguments` break the tool's JSON Schema (empty when they fit)."""
    validator = _validator(json.dumps(tool.parameters or {"type": "object"}, sort_keys=True))
    violations = []
    for error in sorted(validator.iter_errors(dict(arguments)), key=lambda error: list(error.path)):
        path = ".".join(str(part) for part in error.path)
        violations.append(FieldViolation(field=f"arguments.{path}" if path else "arguments", message=error.message))
    return violations


@dataclass(slots=True)
class CallContexts:
    """Tokens naming in-flight callers, so an in-process MCP server can find whom it runs for."""

    _contexts: dict[str, CallerContext] = field(default_factory=dict)

    @contextmanager
    def bind(self, context: CallerContext) -> Iterator[str]:
        token = secrets.token_urlsafe(16)
        self._contexts[token] = context
        try:
            yield token
        finally:
            del self._contexts[token]

    def lookup(self, meta: Mapping[str, Any] | None) -> CallerContext | None:
        token = (meta or {}).get(CALL_META)
        return self._contexts.get(token) if isinstance(token, str) else None


class ToolRegistry:
    def __init__(self, settings: ToolSettings, contexts: CallContexts | None = None) -> None:
        self.settings = settings
        self.contexts = contexts or CallContexts()
        self._sources: dict[str, Source] = {}
        self._tools: dict[str, RegisteredTool] = {}

    # ------------------------------------------------------------------ sources

    async def add_source(self, spec: SourceSpec, *, wait: float = 0.0) -> Source:
        """Start supervising a source (the plugins' seam: see server/tools/sources.py). With
        `wait`, return once its first connection attempt has ended, or after `wait` seconds."""
        if spec.name in self._sources:
            raise ValueError(f"tool source {spec.name!r} already exists")
        source = Source(
            spec,
            ping_interval=self.settings.mcp_ping_interval,
            max_backoff=self.settings.mcp_max_backoff,
            connect_timeout=self.settings.mcp_connect_timeout,
            on_change=self._rebuild,
        )
        self._sources[spec.name] = source
        source.start()
        if wait:
            await source.wait_settled(wait)
        return source

    async def remove_source(self, name: str) -> None:
        source = self._sources.pop(name, None)
        if source is None:
            raise NotFound(f"No tool source {name!r}")
        await source.stop()
        self._rebuild()

    def sources(self) -> list[Source]:
        return sorted(self._sources.values(), key=lambda s: (s.name != BUILTIN_SOURCE, s.name))

    def source(self, name: str) -> Source:
        source = self._sources.get(name)
        if source is None:
            raise NotFound(f"No tool source {name!r}")
        return source

    async def reconnect(self, name: str) -> Source:
        source = self.source(name)
        await source.reconnect(self.settings.mcp_connect_timeout + 1)
        return source

    def health(self) -> dict[str, bool]:
        return {source.name: source.state is SourceState.CONNECTED for source in self.sources()}

    async def close(self) -> None:
        await asyncio.gather(*(source.stop() for source in self._sources.values()))
        self._sources.clear()
        self._tools.clear()

    # ------------------------------------------------------------------ tools

    def _rebuild(self) -> None:
        """Recompute the names of every listed tool (called when a source's tools change)."""
        listed = [(source, tool) for source in self.sources() for tool in source.tools]
        counts = Counter(exposed_name(tool.name) for _, tool in listed)
        builtin = {exposed_name(tool.name) for source, tool in listed if source.name == BUILTIN_SOURCE}
        tools: dict[str, RegisteredTool] = {}
        for source, tool in listed:
            name = exposed_name(tool.name)
            if source.name != BUILTIN_SOURCE and (counts[name] > 1 or name in builtin):
                name = exposed_name(f"{source.name.replace(':', '_')}__{tool.name}")
            if name not in tools:
                tools[name] = self._registered(source.spec, tool, name)
        self._tools = tools

    @staticmethod
    def _registered(spec: SourceSpec, tool: mcp_types.Tool, name: str) -> RegisteredTool:
        meta = (tool.meta or {}) if spec.trusted else {}
        hints = tool.annotations
        return RegisteredTool(
            name=name,
            source=spec.name,
            original=tool.name,
            description=tool.description or "",
            parameters=dict(tool.input_schema or {"type": "object"}),
            category=str(meta.get(CATEGORY_META) or spec.category),
            title=tool.title or (hints.title if hints and hints.title else ""),
            read_only=bool(hints and hints.read_only_hint),
            destructive=bool(hints and hints.destructive_hint),
            admin_only=spec.admin_only or bool(meta.get(ADMIN_META)),
        )

    def count(self) -> int:
        return len(self._tools)

    def usable(self, principal: Principal, names: list[str] | None = None) -> list[RegisteredTool]:
        """The tools `principal` may use (among `names` when given), built-in first then by name."""
        wanted = set(names) if names is not None else None
        tools = [
            tool
            for tool in self._tools.values()
            if may_use(principal, tool) and (wanted is None or tool.name in wanted)
        ]
        return sorted(tools, key=lambda tool: (tool.source != BUILTIN_SOURCE, tool.name))

    def get(self, principal: Principal, name: str) -> RegisteredTool:
        """A tool the caller may use; unknown and forbidden tools look the same (404)."""
        tool = self._tools.get(name)
        if tool is None or not may_use(principal, tool):
            raise NotFound(f"No tool {name!r}")
        return tool

    async def call(
        self, context: CallerContext, name: str, arguments: Mapping[str, Any], *, within: float | None = None
    ) -> ToolOutcome:
        """Run a tool for the caller. Arguments that break its schema raise InvalidToolArguments;
        anything that goes wrong after that (the tool fails, times out, its server dies) is an
        outcome with `is_error`."""
        tool = self.get(context.principal, name)
        if violations := argument_violations(tool, arguments):
            raise InvalidToolArguments(violations, f"Arguments do not match the parameters of tool {name!r}")
        source = self._sources.get(tool.source)
        started = time.monotonic()
        limit = min(self.settings.tool_timeout, within) if within is not None else self.settings.tool_timeout
        if source is None or source.session is None:
            return ToolOutcome(tool=name, content=f"Tool {name!r} is unavailable: its server is down", is_error=True)
        try:
            with self.contexts.bind(context) as token:
                meta = cast(mcp_types.RequestParamsMeta, {CALL_META: token}) if source.spec.trusted else None
                result = await asyncio.wait_for(self._call(source, context, tool, arguments, meta), limit)
        except TimeoutError:
            message = f"Tool {name!r} did not answer within {limit:g} s"
            return ToolOutcome(tool=name, content=message, is_error=True, seconds=time.monotonic() - started)
        except MCPError as error:
            if "closed" in str(error).lower():
                source.broken(error)
            message = f"Tool {name!r} failed: {describe(error)}"
            return ToolOutcome(tool=name, content=message, is_error=True, seconds=time.monotonic() - started)
        return self._outcome(name, result, time.monotonic() - started)

    @staticmethod
    async def _call(
        source: Source,
        context: CallerContext,
        tool: RegisteredTool,
        arguments: Mapping[str, Any],
        meta: mcp_types.RequestParamsMeta | None,
    ) -> mcp_types.CallToolResult:
        """The call, in the source's session, or in one opened for this caller (per_caller)."""
        if source.spec.per_caller is None:
            assert source.session is not None
            return await source.session.call_tool(tool.original, dict(arguments), meta=meta)
        async with source.spec.per_caller(context.principal) as session:
            return await session.call_tool(tool.original, dict(arguments), meta=meta)

    def _outcome(self, name: str, result: mcp_types.CallToolResult, seconds: float) -> ToolOutcome:
        parts = []
        for block in result.content:
            if isinstance(block, mcp_types.TextContent):
                parts.append(block.text)
            else:
                parts.append(f"[{block.type} content]")
        content = "\n".join(parts)
        if not content and result.structured_content is not None:
            content = json.dumps(result.structured_content, ensure_ascii=False)
        cap = self.settings.tool_output_chars
        if len(content) > cap:
            content = content[:cap] + f"\n[… output cut at {cap} characters]"
        return ToolOutcome(
            tool=name,
            content=content,
            is_error=bool(result.is_error),
            structured=dict(result.structured_content) if result.structured_content else None,
            seconds=seconds,
        )
