"""The tools domain as the server assembles it: the registry, its sources, the servicer.

The built-in tools are one in-process MCP server (source "builtin"); each configured MCP
server is one more source, and plugins add and remove theirs at run time with
`ToolsDomain.registry.add_source(...)` / `remove_source(...)` (server/tools/sources.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from relais.v1 import tool_pb2, tool_pb2_grpc

from server.config import Settings
from server.registration import ServiceRegistration, register
from server.tools.builtin import calculator, clock, units
from server.tools.builtin.base import BuiltinTool, builtin_server
from server.tools.builtin.catalogue import Models, TaskStatuses, catalogue_tools
from server.tools.builtin.commands import CommandRunner, command_tools, resolve_programs
from server.tools.builtin.knowledge import Conversations, Knowledge, knowledge_tools
from server.tools.builtin.web import WebFetcher, web_tools
from server.tools.config import BUILTIN_SOURCE, ToolSettings
from server.tools.registry import ToolRegistry
from server.tools.service import ToolService
from server.tools.servicer import ToolServicer
from server.tools.sources import SourceSpec, configured_source, open_client

log = logging.getLogger("relais.tools")


@dataclass(frozen=True, slots=True)
class ToolsDomain:
    registry: ToolRegistry
    service: ToolService

    def registrations(self) -> list[ServiceRegistration]:
        return [register(tool_pb2, tool_pb2_grpc, "ToolService", ToolServicer(self.service))]

    async def count(self) -> int:
        return self.registry.count()

    async def close(self) -> None:
        await self.registry.close()


def builtin_tools(
    settings: ToolSettings,
    *,
    knowledge: Knowledge,
    conversations: Conversations,
    models: Models,
    tasks: TaskStatuses,
    workdir: Any,
) -> list[BuiltinTool]:
    tools = [
        *clock.TOOLS,
        *calculator.TOOLS,
        *units.TOOLS,
        *knowledge_tools(knowledge, conversations),
        *catalogue_tools(models, tasks),
    ]
    if settings.web_fetch:
        fetcher = WebFetcher(
            max_bytes=settings.web_fetch_max_bytes,
            timeout=settings.web_fetch_timeout,
            allow_networks=settings.web_fetch_allow_networks,
        )
        tools += web_tools(fetcher)
    if programs := resolve_programs(settings.execute_allow):
        runner = CommandRunner(
            programs, timeout=settings.execute_timeout, max_output=settings.tool_output_chars, workdir=workdir
        )
        tools += command_tools(runner)
    return tools


async def start_tools(
    settings: Settings,
    registry: ToolRegistry,
    *,
    knowledge: Knowledge,
    conversations: Conversations,
    models: Models,
    tasks: TaskStatuses,
) -> ToolsDomain:
    """The registry with the built-in tools listed, and the configured MCP servers connecting
    in the background (a server that is down does not delay the start)."""
    tool_settings = registry.settings
    tools = builtin_tools(
        tool_settings,
        knowledge=knowledge,
        conversations=conversations,
        models=models,
        tasks=tasks,
        workdir=settings.data_dir / "tools" / "work",
    )
    server = builtin_server(tools, registry.contexts)
    builtin = SourceSpec(name=BUILTIN_SOURCE, kind="builtin", open=lambda: open_client(server), trusted=True)
    await registry.add_source(builtin, wait=tool_settings.mcp_connect_timeout)
    for config in tool_settings.mcp_servers:
        await registry.add_source(configured_source(config))
    return ToolsDomain(registry, ToolService(registry))
