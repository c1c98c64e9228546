"""The sockets a plugin serves: gRPC (its services, PluginRuntimeService, health) and, when it has
tools, MCP over streamable HTTP, each on a Unix socket in the directory Relais gave it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from relais.plugin.v1 import runtime_pb2, runtime_pb2_grpc

from relais_plugin import handshake
from relais_plugin.caller import Caller
from relais_plugin.plugin import (
    Handler,
    PluginError,
    abort_on_error,
    call_handler,
    iterate,
    message_class,
    to_message,
)

if TYPE_CHECKING:
    from relais_plugin.plugin import _Registry

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


@dataclass(slots=True, kw_only=True)
class Served:
    manifest: dict[str, Any]
    pool: descriptor_pool.DescriptorPool
    registry: _Registry
    socket_dir: Path
    _server: grpc.aio.Server | None = None
    _health: health.aio.HealthServicer = field(default_factory=health.aio.HealthServicer)
    _mcp: Any = None
    _mcp_task: asyncio.Task[None] | None = None

    @property
    def grpc_socket(self) -> Path:
        return self.socket_dir / handshake.GRPC_SOCKET

    @property
    def mcp_socket(self) -> Path:
        return self.socket_dir / handshake.MCP_SOCKET

    async def start(self) -> None:
        if self.registry.tools:
            await self._start_mcp()
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
        )
        server.add_generic_rpc_handlers(list(self._service_handlers()))
        runtime_pb2_grpc.add_PluginRuntimeServiceServicer_to_server(_Runtime(self), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.grpc_socket.unlink(missing_ok=True)
        server.add_insecure_port(f"unix:{self.grpc_socket}")
        await server.start()
        self._server = server
        for name in ["", *self.manifest.get("services", [])]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self) -> None:
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(5)
        if self._mcp is not None and self._mcp_task is not None:
            self._mcp.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._mcp_task, 5)

    # -------------------------------------------------------------------------- gRPC

    def _service_handlers(self) -> Iterator[grpc.GenericRpcHandler]:
        for service_name in self.manifest.get("services", []):
            service = self.pool.FindServiceByName(service_name)
            handlers = {}
            for method in service.methods:
                function = self.registry.rpcs[f"/{service_name}/{method.name}"]
                handlers[method.name] = _method_handler(function, method)
            yield grpc.method_handlers_generic_handler(service_name, handlers)

    # --------------------------------------------------------------------------- MCP

    async def _start_mcp(self) -> None:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.transport_security import TransportSecuritySettings

        server: Any = MCPServer(name=self.manifest["id"], version=self.manifest["version"])
        descriptions = {tool["name"]: tool.get("description") for tool in self.manifest.get("tools", [])}
        for tool in self.registry.tools.values():
            server.tool(name=tool.name, description=tool.description or descriptions.get(tool.name))(tool.function)
        # Only Relais reaches the socket (its directory is private); it names the host "plugin".
        security = TransportSecuritySettings(allowed_hosts=["plugin"], allowed_origins=[])
        app = server.streamable_http_app(transport_security=security)
        self.mcp_socket.unlink(missing_ok=True)
        config = uvicorn.Config(app, uds=str(self.mcp_socket), log_level="warning", access_log=False, lifespan="on")
        self._mcp = _QuietUvicorn(config)
        self._mcp_task = asyncio.create_task(self._mcp.serve())
        while not self._mcp.started:
            if self._mcp_task.done():
                self._mcp_task.result()
                raise RuntimeError("the MCP server stopped at start")
            await asyncio.sleep(0.01)


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the plugin stops everything together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _method_handler(function: Handler, method: Any) -> grpc.RpcMethodHandler:
    request_class, response_class = message_class(method.input_type), message_class(method.output_type)
    options = {"request_deserializer": request_class.FromString, "response_serializer": _serialize}
    if method.client_streaming:
        raise SystemExit(f"plugin refuses to start: {method.full_name} is client-streaming, which plugins cannot serve")
    if method.server_streaming:

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            caller = Caller.from_metadata(context.invocation_metadata() or ())
            try:
                async for item in iterate(function(request, caller)):
                    yield to_message(item, response_class)
            except (PluginError, Exception) as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await abort_on_error(context, error)

        return grpc.unary_stream_rpc_method_handler(stream, **options)

    async def unary(request: Any, context: Any) -> Any:
        caller = Caller.from_metadata(context.invocation_metadata() or ())
        try:
            return to_message(await call_handler(function, request, caller), response_class)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort_on_error(context, error)

    return grpc.unary_unary_rpc_method_handler(unary, **options)


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


class _Runtime(runtime_pb2_grpc.PluginRuntimeServiceServicer):
    def __init__(self, served: Served) -> None:
        self._served = served

    async def Describe(self, request: Any, context: Any) -> runtime_pb2.DescribeResponse:
        manifest = self._served.manifest
        return runtime_pb2.DescribeResponse(
            services=manifest.get("services", []),
            actions=[
                runtime_pb2.ActionDescription(
                    name=action["name"],
                    description=action.get("description", ""),
                    params_schema=json.dumps(action.get("params_schema", {"type": "object"})),
                )
                for action in manifest.get("actions", [])
            ],
            mcp_socket=str(self._served.mcp_socket) if self._served.registry.tools else "",
            tools=sorted(self._served.registry.tools),
        )

    async def RunAction(self, request: Any, context: Any) -> runtime_pb2.RunActionResponse:
        function = self._served.registry.actions.get(request.name)
        if function is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no action {request.name!r}")
            raise AssertionError("unreachable")  # abort raises
        caller = Caller.from_metadata(context.invocation_metadata() or ())
        try:
            params = json.loads(request.params_json or "{}")
            output = await call_handler(function, params, caller)
            return runtime_pb2.RunActionResponse(output_json=json.dumps(output))
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort_on_error(context, error)
            raise  # abort raised already; this line is for type checkers
