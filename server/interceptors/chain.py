"""Nest call scopes into one grpc.aio server interceptor."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc

from server.interceptors.call import CallState, begin_call, end_call


class CallScope(Protocol):
    """One concern wrapped around every call (unary and streaming alike).

    Code before the `yield` runs before the servicer; exceptions from the servicer,
    including a stream's, surface at the `yield`.
    """

    def scope(
        self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]
    ) -> contextlib.AbstractAsyncContextManager[None]: ...


class _ChainInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, scopes: Sequence[CallScope]) -> None:
        self._scopes = tuple(scopes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return _wrap(handler, handler_call_details.method, self._enter)

    @contextlib.asynccontextmanager
    async def _enter(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        state = CallState(method=method)
        token = begin_call(state)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for scope in self._scopes:
                    await stack.enter_async_context(scope.scope(state, context))
                yield
        finally:
            end_call(token)


Enter = Callable[[str, Any], contextlib.AbstractAsyncContextManager[None]]


def _wrap(handler: grpc.RpcMethodHandler, method: str, enter: Enter) -> grpc.RpcMethodHandler:
    """The same handler with each behaviour run inside `enter`."""

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: Any) -> Any:
            async with enter(method, context):
                return await inner(request, context)

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        async with enter(method, context):
            async for item in inner_stream(request, context):
                yield item

    factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return factory(stream, handler.request_deserializer, handler.response_serializer)


def chain(*scopes: CallScope) -> grpc.aio.ServerInterceptor:
    """One interceptor running `scopes` outermost first."""
    return _ChainInterceptor(scopes)
