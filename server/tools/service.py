"""The tools as the servicer sees them: listing, describing and calling them, and the sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.auth import Principal
from server.tools.registry import CallerContext, RegisteredTool, ToolOutcome, ToolRegistry
from server.tools.sources import Source


class ToolService:
    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry

    def list_tools(self, principal: Principal) -> list[RegisteredTool]:
        return self._registry.usable(principal)

    def get_tool(self, principal: Principal, name: str) -> RegisteredTool:
        return self._registry.get(principal, name)

    async def call_tool(
        self, principal: Principal, name: str, arguments: Mapping[str, Any], *, request_id: str
    ) -> ToolOutcome:
        return await self._registry.call(CallerContext(principal=principal, request_id=request_id), name, arguments)

    def list_sources(self) -> list[Source]:
        return self._registry.sources()

    async def reconnect_source(self, name: str) -> Source:
        return await self._registry.reconnect(name)
