"""What running plugins contribute beyond routes: MCP tools and task actions.

For the tool registry, each running plugin with tools is a source of its own:

    for source in plugins.tool_sources():            # PluginToolSource(name="plugin:hello", …)
        async with source.session(principal) as session:   # an initialized mcp.ClientSession
            tools = await session.list_tools()
            result = await session.call_tool("greet", {"name": "Ann"})

For the scheduler, each action of a running plugin, named "<plugin id>.<action>":

    for action in plugins.actions():                  # PluginTaskAction(name, description, params_schema, run)
        output = await action.run({"name": "Ann"}, principal)

Both reach whichever process serves the plugin when they are used, so a reload is invisible to
them; a plugin that stopped answers Unavailable.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx2
import jsonschema
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from relais.plugin.v1 import runtime_pb2, runtime_pb2_grpc

from server.auth import Principal
from server.errors import (
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationFailed,
)
from server.plugins.process import PluginProcess
from server.plugins.proxy import caller_metadata
from server.plugins.runner import PluginRunner

MCP_URL = "http://plugin/mcp"
ACTION_TIMEOUT = 300.0
# A plugin's status, as the domain error the scheduler and the tool registry understand.
_ERRORS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


def _serving(runner: PluginRunner) -> PluginProcess:
    process = runner.current
    if process is None or process.channel is None or not process.running:
        raise Unavailable(f"Plugin {runner.plugin_id} is not running ({runner.state})")
    return process


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginToolSource:
    """A running plugin's MCP server, as a tool source."""

    name: str
    plugin_id: str
    description: str
    tools: tuple[str, ...]
    runner: PluginRunner = field(repr=False)

    @contextlib.asynccontextmanager
    async def session(self, principal: Principal | None = None) -> AsyncIterator[ClientSession]:
        """An initialized MCP client session with the plugin's tools, for `principal` (passed to
        the plugin as x-relais-* headers, never as credentials)."""
        process = _serving(self.runner)
        socket = process.description.mcp_socket
        if not socket:
            raise Unavailable(f"Plugin {self.plugin_id} serves no tools")
        headers = dict(caller_metadata(principal, ""))
        process.enter()
        try:
            transport = httpx2.AsyncHTTPTransport(uds=socket)
            async with (
                httpx2.AsyncClient(transport=transport, headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
                streamable_http_client(MCP_URL, http_client=http) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                yield session
        finally:
            process.leave()


Run = Callable[[dict[str, Any], Principal], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginTaskAction:
    """A task action a running plugin provides: `run(params, principal)` checks the params against
    the schema (ValidationFailed), then runs the action in the plugin as `principal`."""

    name: str
    description: str
    params_schema: dict[str, Any]
    run: Run = field(repr=False)


def task_action(runner: PluginRunner, action: str, description: str, schema: dict[str, Any]) -> PluginTaskAction:
    validator = jsonschema.Draft202012Validator(schema)

    async def run(params: dict[str, Any], principal: Principal) -> Any:
        problems = [
            FieldViolation(field=".".join(map(str, error.absolute_path)) or "params", message=error.message)
            for error in validator.iter_errors(params)
        ]
        if problems:
            raise ValidationFailed(problems, message=f"Invalid params for {runner.plugin_id}.{action}")
        process = _serving(runner)
        assert process.channel is not None
        stub = runtime_pb2_grpc.PluginRuntimeServiceStub(process.channel)
        started, ok = time.perf_counter(), False
        process.enter()
        try:
            answer = await stub.RunAction(
                runtime_pb2.RunActionRequest(name=action, params_json=json.dumps(params)),
                metadata=caller_metadata(principal, ""),
                timeout=ACTION_TIMEOUT,
            )
            ok = True
            return json.loads(answer.output_json) if answer.output_json else None
        except grpc.aio.AioRpcError as error:
            kind = _ERRORS.get(error.code(), FailedPrecondition)  # the action itself failed
            raise kind(f"Plugin {runner.plugin_id} action {action}: {error.details()}") from None
        finally:
            process.leave()
            runner.stats.record(time.perf_counter() - started, ok=ok)

    return PluginTaskAction(name=f"{runner.plugin_id}.{action}", description=description, params_schema=schema, run=run)
