"""Nest call scopes into one grpc.aio server interceptor."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from server.bounds import check_bounds
from server.interceptors.call import CallState, begin_call, current_call, end_call


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
    async def _enter(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], streaming: bool = False
    ) -> AsyncIterator[None]:
        state = CallState(method=method, streaming=streaming)
        token = begin_call(state)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for scope in self._scopes:
                    await stack.enter_async_context(scope.scope(state, context))
                yield
        finally:
            end_call(token)


Enter = Callable[[str, Any, bool], contextlib.AbstractAsyncContextManager[None]]


def _wrap(handler: grpc.RpcMethodHandler, method: str, enter: Enter) -> grpc.RpcMethodHandler:
    """The same handler with each behaviour run inside `enter`."""

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: Any) -> Any:
            async with enter(method, context, False):
                _check(request)
                return await inner(request, context)

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return factory(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        async with enter(method, context, True):
            state = current_call()
            _check(request)
            headed = _HeadedContext(context, state)
            items = inner_stream(request, headed).__aiter__()
            while True:
                # While the servicer works, a scope may cancel the call (see CallState.interrupt);
                # never while grpc writes an item, which a cancellation would leave unfinished.
                state.reading = True
                try:
                    item = await items.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    state.reading = False
                await headed.send_headers()
                yield item
                if state.interrupted is not None:
                    raise state.interrupted

    factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return factory(stream, handler.request_deserializer, handler.response_serializer)


def _check(request: Any) -> None:
    """The request's declared field bounds (a client-streaming call's iterator has none to check)."""
    if isinstance(request, Message):
        check_bounds(request)


class _HeadedContext:
    """A stream's context that sends the call's response metadata (rate-limit headers…) as
    initial metadata before the first message: a streamed HTTP response's headers leave
    before its trailers exist. A servicer's own initial metadata is merged with it."""

    def __init__(self, context: Any, state: CallState) -> None:
        self._context = context
        self._state = state
        self._sent = False

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._sent = True
        await self._context.send_initial_metadata((*self._state.response_metadata, *metadata))

    async def send_headers(self) -> None:
        if not self._sent:
            await self.send_initial_metadata(())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def chain(*scopes: CallScope) -> grpc.aio.ServerInterceptor:
    """One interceptor running `scopes` outermost first."""
    return _ChainInterceptor(scopes)
