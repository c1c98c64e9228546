"""Calls to plugin services, forwarded to the plugin's process.

The bridge (or any gRPC client) calls a plugin's method on Relais' own gRPC port, e.g.
/hello.v1.HelloService/Greet. Relais' interceptors run as for its own methods (authentication
against the method's access rule from the plugin's descriptor set, CSRF, rate limits, metrics);
then this handler forwards the request's bytes to the process serving the method now, with the
caller in metadata instead of their credentials, and its answer (or status) back.

    proxy = PluginProxy()
    proxy.mount(runner)      # the methods of the runner's current release, swapped in one assignment
    proxy.unmount(runner)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from relais_plugin.caller import Caller

from server.auth import AccessRule, Principal
from server.interceptors.call import current_call
from server.plugins.process import PluginProcess
from server.plugins.routes import MethodInfo
from server.plugins.runner import PluginRunner

# Metadata of a plugin's answer passed on to the caller: rich error details, and headers a
# download or a client may need.
PASSED_BACK = ("grpc-status-details-bin", "content-disposition", "content-type")


def caller_metadata(principal: Principal | None, request_id: str) -> list[tuple[str, str]]:
    """Who calls, for the plugin: never their token, cookie, API key or CSRF token."""
    if principal is None:
        return Caller(request_id=request_id).metadata()
    caller = Caller(
        subject=principal.subject,
        user_id=principal.user_id,
        roles=principal.roles,
        permissions=principal.permissions,
        anonymous=principal.anonymous,
        request_id=request_id,
    )
    return caller.metadata()


class PluginProxy(grpc.GenericRpcHandler):
    def __init__(self) -> None:
        # Full method → (method, runner); replaced whole, never mutated, so a call sees one table.
        self._table: dict[str, tuple[MethodInfo, PluginRunner]] = {}

    def mount(self, runner: PluginRunner) -> None:
        release = runner.release
        table = {name: entry for name, entry in self._table.items() if entry[1] is not runner}
        if release is not None:
            table.update({name: (info, runner) for name, info in release.served.methods.items()})
        self._table = table

    def unmount(self, runner: PluginRunner) -> None:
        self._table = {name: entry for name, entry in self._table.items() if entry[1] is not runner}

    def rule_for(self, method: str) -> AccessRule | None:
        """The access rule of a plugin method (None when no plugin serves it)."""
        entry = self._table.get(method)
        return entry[0].rule if entry is not None else None

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        entry = self._table.get(handler_call_details.method)
        if entry is None:
            return None
        info, runner = entry
        if info.server_streaming:
            return grpc.unary_stream_rpc_method_handler(self._stream(info.full_method, runner))
        return grpc.unary_unary_rpc_method_handler(self._unary(info.full_method, runner))

    def _unary(self, method: str, runner: PluginRunner) -> Any:
        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            process = await _serving(runner, context)
            started = time.perf_counter()
            process.enter()
            ok = False
            try:
                call = process.callable(method, streaming=False)(
                    request, metadata=_metadata(), timeout=context.time_remaining()
                )
                response: bytes = await call
                ok = True
                return response
            except grpc.aio.AioRpcError as error:
                await _abort(context, error)
                raise
            finally:
                process.leave()
                runner.stats.record(time.perf_counter() - started, ok=ok)

        return forward

    def _stream(self, method: str, runner: PluginRunner) -> Any:
        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
            process = await _serving(runner, context)
            started = time.perf_counter()
            process.enter()
            ok = False
            call = process.callable(method, streaming=True)(
                request, metadata=_metadata(), timeout=context.time_remaining()
            )
            try:
                headers = [(k, v) for k, v in await call.initial_metadata() or () if k in PASSED_BACK]
                if headers:
                    await context.send_initial_metadata(headers)
                async for item in call:
                    yield item
                ok = True
            except grpc.aio.AioRpcError as error:
                await _abort(context, error)
            finally:
                call.cancel()
                process.leave()
                runner.stats.record(time.perf_counter() - started, ok=ok)

        return forward


async def _serving(runner: PluginRunner, context: grpc.aio.ServicerContext[Any, Any]) -> PluginProcess:
    process = runner.current
    if process is None or process.channel is None or not process.running:
        runner.stats.record(0.0, ok=False)
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"Plugin {runner.plugin_id} is not running ({runner.state})")
        raise AssertionError("unreachable")  # abort raises
    return process


def _metadata() -> list[tuple[str, str]]:
    state = current_call()
    return caller_metadata(state.principal, state.request_id)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: grpc.aio.AioRpcError) -> None:
    """End the call with the plugin's status; a plugin that is unreachable is UNAVAILABLE."""
    trailing = tuple((k, v) for k, v in error.trailing_metadata() or () if k in PASSED_BACK)
    details = error.details() or error.code().name
    await context.abort(error.code(), details, trailing)
