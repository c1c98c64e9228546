"""ToolService over gRPC."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from relais.v1 import tool_pb2, tool_pb2_grpc

from server.convert import timestamp
from server.interceptors.call import current_call, current_principal
from server.tools.registry import RegisteredTool
from server.tools.service import ToolService
from server.tools.sources import Source, SourceState

STATES = {
    SourceState.CONNECTING: tool_pb2.TOOL_SOURCE_STATE_CONNECTING,
    SourceState.CONNECTED: tool_pb2.TOOL_SOURCE_STATE_CONNECTED,
    SourceState.DISCONNECTED: tool_pb2.TOOL_SOURCE_STATE_DISCONNECTED,
}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(value, message)
    return message


def tool_message(tool: RegisteredTool) -> tool_pb2.Tool:
    return tool_pb2.Tool(
        name=tool.name,
        description=tool.description,
        parameters=struct(tool.parameters),
        category=tool.category,
        source=tool.source,
        title=tool.title,
        read_only=tool.read_only,
        destructive=tool.destructive,
        admin_only=tool.admin_only,
        permission=tool.permission,
    )


def source_message(source: Source) -> tool_pb2.ToolSource:
    message = tool_pb2.ToolSource(
        name=source.name,
        kind=source.spec.kind,
        state=STATES[source.state],
        error=source.error,
        tools_count=len(source.tools),
        failures=source.failures,
        admin_only=source.spec.admin_only,
    )
    if source.connected_at is not None:
        message.connected_at.CopyFrom(timestamp(source.connected_at))
    if source.next_attempt_at is not None and source.state is SourceState.DISCONNECTED:
        message.next_attempt_at.CopyFrom(timestamp(source.next_attempt_at))
    return message


class ToolServicer(tool_pb2_grpc.ToolServiceServicer):
    def __init__(self, tools: ToolService) -> None:
        self._tools = tools

    async def ListTools(self, request: tool_pb2.ListToolsRequest, context: Any) -> tool_pb2.ListToolsResponse:
        tools = self._tools.list_tools(current_principal())
        return tool_pb2.ListToolsResponse(count=len(tools), tools=[tool_message(tool) for tool in tools])

    async def GetTool(self, request: tool_pb2.GetToolRequest, context: Any) -> tool_pb2.Tool:
        return tool_message(self._tools.get_tool(current_principal(), request.name))

    async def CallTool(self, request: tool_pb2.CallToolRequest, context: Any) -> tool_pb2.CallToolResponse:
        arguments = json_format.MessageToDict(request.arguments) if request.HasField("arguments") else {}
        outcome = await self._tools.call_tool(
            current_principal(), request.name, arguments, request_id=current_call().request_id
        )
        response = tool_pb2.CallToolResponse(
            tool=outcome.tool, content=outcome.content, is_error=outcome.is_error, duration_ms=outcome.seconds * 1e3
        )
        if outcome.structured is not None:
            response.structured_content.CopyFrom(struct(outcome.structured))
        return response

    async def ListToolSources(
        self, request: tool_pb2.ListToolSourcesRequest, context: Any
    ) -> tool_pb2.ListToolSourcesResponse:
        return tool_pb2.ListToolSourcesResponse(sources=[source_message(s) for s in self._tools.list_sources()])

    async def ReconnectToolSource(
        self, request: tool_pb2.ReconnectToolSourceRequest, context: Any
    ) -> tool_pb2.ToolSource:
        return source_message(await self._tools.reconnect_source(request.name))
