"""A plugin's process: its gRPC services, task actions and MCP tools, served the way Relais expects.

    from relais_plugin import Caller, Plugin, PluginError

    plugin = Plugin()

    @plugin.rpc("hello.v1.HelloService", "SayHello")
    async def say_hello(request, caller: Caller):
        return {"message": f"Hello, {request.name}!"}      # or a message of the output type

    @plugin.tool(description="Greet someone by name")
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    @plugin.action("greet", description="Greet someone; the scheduler runs it")
    async def greet_action(params: dict, caller: Caller) -> dict:
        return {"message": f"Hello, {params['name']}!"}

    if __name__ == "__main__":
        plugin.run()

Request and response messages come from the bundle's descriptor set (no generated code needed).
Every RPC, action and tool the manifest declares must be implemented, and nothing else: the
plugin refuses to start otherwise, saying what is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from relais_plugin import handshake
from relais_plugin.caller import Caller

Handler = Callable[..., Any]


class PluginError(Exception):
    """An error the caller should see: a gRPC status name ("NOT_FOUND", "INVALID_ARGUMENT",
    "FAILED_PRECONDITION", "PERMISSION_DENIED"…) and a message. Relais' bridge turns it into the
    matching HTTP status. Any other exception is logged and reaches the caller as INTERNAL."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = grpc.StatusCode[code]
        self.message = message


@dataclass(slots=True)
class _Tool:
    function: Handler
    name: str
    description: str | None


@dataclass(slots=True)
class _Registry:
    rpcs: dict[str, Handler] = field(default_factory=dict)
    tools: dict[str, _Tool] = field(default_factory=dict)
    actions: dict[str, Handler] = field(default_factory=dict)


class Plugin:
    def __init__(self, bundle_dir: str | Path | None = None) -> None:
        self._bundle_dir = Path(bundle_dir) if bundle_dir else None
        self._registry = _Registry()

    # ------------------------------------------------------------------ declarations

    def rpc(self, service: str, method: str) -> Callable[[Handler], Handler]:
        """Implement `method` of `service` (full name, e.g. "hello.v1.HelloService"): the handler
        takes (request, caller) and returns the response (a message or a dict), or, for a
        server-streaming method, is an async generator of them."""

        def register(function: Handler) -> Handler:
            self._registry.rpcs[f"/{service}/{method}"] = function
            return function

        return register

    def tool(self, name: str | None = None, *, description: str | None = None) -> Callable[[Handler], Handler]:
        """An MCP tool (its input schema comes from the function's signature, as MCP SDK tools'
        do). A parameter annotated `mcp.server.mcpserver.Context` receives the request context;
        `caller_of(context)` tells who called."""

        def register(function: Handler) -> Handler:
            tool_name = name or function.__name__
            self._registry.tools[tool_name] = _Tool(function, tool_name, description)
            return function

        return register

    def action(self, name: str, *, description: str = "") -> Callable[[Handler], Handler]:
        """A task action: takes (params, caller), returns any JSON value. Its params schema is the
        manifest's (Relais checks params against it before calling)."""
        del description  # the manifest's description is the one Relais shows

        def register(function: Handler) -> Handler:
            self._registry.actions[name] = function
            return function

        return register

    # ------------------------------------------------------------------------ running

    def run(self) -> None:
        """Serve until Relais stops the process (SIGTERM)."""
        if os.environ.get(handshake.MAGIC_COOKIE_KEY) != handshake.MAGIC_COOKIE_VALUE:
            print(
                "This is a Relais plugin: install its bundle into Relais (relais plugin pack, then "
                "POST /plugins/upload) rather than running it directly.",
                file=sys.stderr,
            )
            raise SystemExit(1)
        asyncio.run(self.serve())

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        bundle = self._bundle_dir or Path(os.environ.get(handshake.BUNDLE_DIR_KEY, "."))
        manifest = json.loads((bundle / "manifest.json").read_text())
        pool = _load_pool(bundle, manifest)
        _check_declarations(manifest, pool, self._registry)
        socket_dir = Path(os.environ.get(handshake.SOCKET_DIR_KEY) or bundle)
        from relais_plugin.serve import Served

        served = Served(manifest=manifest, pool=pool, registry=self._registry, socket_dir=socket_dir)
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await served.start()
        print(handshake.Handshake(network="unix", address=str(served.grpc_socket)).line(), flush=True)
        try:
            await stop.wait()
        finally:
            await served.stop()


def caller_of(context: Any) -> Caller:
    """The caller of an MCP tool, from its request context's headers."""
    headers = getattr(context, "headers", None) or {}
    return Caller.from_metadata(dict(headers))


# ------------------------------------------------------------------------ internals


def _load_pool(bundle: Path, manifest: dict[str, Any]) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    name = manifest.get("descriptor_set") or ""
    if name:
        files = descriptor_pb2.FileDescriptorSet.FromString((bundle / name).read_bytes())
        for file in files.file:
            pool.Add(file)
    return pool


def _check_declarations(manifest: dict[str, Any], pool: descriptor_pool.DescriptorPool, registry: _Registry) -> None:
    declared = set()
    for service in manifest.get("services", []):
        for method in pool.FindServiceByName(service).methods:
            declared.add(f"/{service}/{method.name}")
    problems = [f"RPC {name} is not implemented" for name in sorted(declared - set(registry.rpcs))]
    problems += [f"RPC {name} is not in a service the manifest lists" for name in sorted(set(registry.rpcs) - declared)]
    actions = {action["name"] for action in manifest.get("actions", [])}
    problems += [f"action {name} is not implemented" for name in sorted(actions - set(registry.actions))]
    problems += [f"action {name} is not declared in the manifest" for name in sorted(set(registry.actions) - actions)]
    tools = {tool["name"] for tool in manifest.get("tools", [])}
    problems += [f"tool {name} is not implemented" for name in sorted(tools - set(registry.tools))]
    problems += [f"tool {name} is not declared in the manifest" for name in sorted(set(registry.tools) - tools)]
    if problems:
        raise SystemExit("plugin refuses to start: " + "; ".join(problems))


def message_class(descriptor: Any) -> type[Message]:
    return cast(type[Message], message_factory.GetMessageClass(descriptor))


def to_message(value: Any, output: type[Message]) -> Message:
    if isinstance(value, Message):
        return value
    if value is None:
        return output()
    return json_format.ParseDict(value, output())


async def call_handler(function: Handler, *args: Any) -> Any:
    result = function(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def abort_on_error(context: Any, error: Exception) -> None:
    """End a call with the status its error asks for (INTERNAL, logged, for a plain exception)."""
    if isinstance(error, PluginError):
        await context.abort(error.code, error.message)
    traceback.print_exception(error, file=sys.stderr)
    await context.abort(grpc.StatusCode.INTERNAL, "The plugin failed; its log has the details")


async def iterate(result: Any) -> AsyncIterator[Any]:
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
    else:
        for item in result:
            yield item
