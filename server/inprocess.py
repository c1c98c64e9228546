"""Calls from the co-located bridge served in this process, without a socket.

`relais serve` runs the bridge and the server in one process. Over a loopback channel each
REST call is serialized, framed as HTTP/2, polled by gRPC's core, parsed and deserialized twice;
grpc-gateway's `RegisterXxxHandlerServer` skips all of that by calling the implementation in
process, and so does this channel. It looks to the bridge like a `grpc.aio.Channel` (the
multicallables, the call objects, `AioRpcError` on failure), and runs the server's *wrapped*
handlers, so the interceptor chain (request ids, metrics, errors, authentication, sessions,
rate limits) runs exactly as for a call that came over the wire. Each call runs in a task of
its own, as grpc.aio runs a servicer, so cancelling it (a client that leaves, a session that
ends) behaves the same. Methods the server did not register here (a plugin's, added at run
time) go to the fallback channel over the socket.

    handlers = await local_handlers(registrations, interceptor)
    channel = InProcessChannel(handlers, fallback=lambda: grpc.aio.insecure_channel(target))
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import grpc

from server.auth import IN_PROCESS_PEER
from server.registration import ServiceRegistration

MetadataPairs = Sequence[tuple[str, str | bytes]]


class _Details(NamedTuple):
    method: str
    invocation_metadata: tuple[Any, ...]


class _Metadatum(NamedTuple):
    key: str
    value: str | bytes


class _Recorder:
    """Stands in for a grpc.aio.Server while registrations add their servicers: keeps the handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        """The generated code also registers by method name (below), which is what we keep."""

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


async def local_handlers(
    registrations: Iterable[ServiceRegistration], interceptors: Sequence[grpc.aio.ServerInterceptor]
) -> dict[str, grpc.RpcMethodHandler]:
    """Every method of `registrations`, wrapped by `interceptors` (outermost first) as the server
    wraps it."""
    recorder = _Recorder()
    for registration in registrations:
        registration.add(recorder)
    wrapped: dict[str, grpc.RpcMethodHandler] = {}
    for method, handler in recorder.handlers.items():
        for interceptor in reversed(interceptors):

            async def continuation(_: Any, inner: grpc.RpcMethodHandler = handler) -> grpc.RpcMethodHandler:
                return inner

            handler = await interceptor.intercept_service(continuation, _Details(method, ()))
        wrapped[method] = handler
    return wrapped


class _Aborted(Exception):
    """Raised by ServicerContext.abort, as grpc.aio raises its AbortError."""


class _Context:
    """The part of grpc.aio.ServicerContext that servicers and interceptors use."""

    def __init__(self, metadata: MetadataPairs, timeout: float | None) -> None:
        self._metadata = tuple(_Metadatum(key, value) for key, value in metadata)
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self.code_: grpc.StatusCode | None = None
        self.details_: str = ""
        self.initial = grpc.aio.Metadata()
        self.trailing = grpc.aio.Metadata()
        self.headers_sent = asyncio.get_running_loop().create_future()
        self._aborted = False

    def invocation_metadata(self) -> tuple[_Metadatum, ...]:
        return self._metadata

    def peer(self) -> str:
        return IN_PROCESS_PEER

    async def send_initial_metadata(self, metadata: MetadataPairs) -> None:
        if self.headers_sent.done():
            raise RuntimeError("initial metadata was already sent")
        self.initial = grpc.aio.Metadata(*metadata)
        self.headers_sent.set_result(None)

    def headers_leave(self) -> None:
        """Initial metadata goes with the first message or the status when not sent before."""
        if not self.headers_sent.done():
            self.headers_sent.set_result(None)

    def set_trailing_metadata(self, metadata: MetadataPairs) -> None:
        # After abort the status has left, with its own trailing metadata (as in grpc.aio).
        if not self._aborted:
            self.trailing = grpc.aio.Metadata(*metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: MetadataPairs = ()) -> None:
        if self._aborted:
            raise RuntimeError("abort was already called")
        self.code_, self.details_ = code, details
        if trailing_metadata:
            self.set_trailing_metadata(trailing_metadata)
        self._aborted = True
        raise _Aborted()

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code_ = code

    def set_details(self, details: str) -> None:
        self.details_ = details

    def code(self) -> grpc.StatusCode | None:
        return self.code_

    def details(self) -> str:
        return self.details_

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def auth_context(self) -> dict[str, Any]:
        return {}

    def error(self) -> grpc.aio.AioRpcError | None:
        """The failure the client sees, or None when the call succeeded."""
        if self.code_ in (None, grpc.StatusCode.OK):
            return None
        assert self.code_ is not None
        return grpc.aio.AioRpcError(self.code_, self.initial, self.trailing, self.details_)


def _failure(context: _Context, error: BaseException) -> grpc.aio.AioRpcError:
    """What the client of a failed call sees (AioRpcError), as grpc.aio would report it."""
    if isinstance(error, _Aborted):
        found = context.error()
        assert found is not None
        return found
    if isinstance(error, TimeoutError):
        return grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, context.initial, context.trailing, "Deadline Exceeded"
        )
    if isinstance(error, asyncio.CancelledError):
        return grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED, context.initial, context.trailing, "Locally cancelled")
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNKNOWN, context.initial, context.trailing, f"Unexpected {type(error).__name__}"
    )


def _own(request: Any, handler: grpc.RpcMethodHandler) -> Any:
    """The request as the handler's own message class (the bridge's is the same class, unless
    it was built from another descriptor pool)."""
    expected = getattr(handler.request_deserializer, "__self__", None)
    if expected is None or isinstance(request, expected):
        return request
    return handler.request_deserializer(request.SerializeToString())


class _CallHandle:
    """What every in-process call handle answers as grpc.aio's calls do: its metadata once the
    handler sent it, cancellation, and whether the handler's task is over."""

    _context: _Context
    _task: asyncio.Future[Any]

    async def initial_metadata(self) -> grpc.aio.Metadata:
        await self._context.headers_sent
        return self._context.initial

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        await asyncio.wait([self._task])
        return self._context.trailing

    def cancel(self) -> bool:
        return self._task.cancel()

    def done(self) -> bool:
        return self._task.done()


class _UnaryCall(_CallHandle):
    """A unary call's handle, as grpc.aio.UnaryUnaryCall: awaitable, with its metadata."""

    def __init__(self, handler: grpc.RpcMethodHandler, request: Any, context: _Context) -> None:
        self._context = context
        self._task = asyncio.ensure_future(self._run(handler, request))

    async def _run(self, handler: grpc.RpcMethodHandler, request: Any) -> Any:
        try:
            async with asyncio.timeout(self._context.timeout):
                return await self._invoke(handler, request)
        finally:
            self._context.headers_leave()

    def _invoke(self, handler: grpc.RpcMethodHandler, request: Any) -> Any:
        return handler.unary_unary(_own(request, handler), self._context)

    def __await__(self) -> Any:
        return self._result().__await__()

    async def _result(self) -> Any:
        try:
            response = await asyncio.shield(self._task)
        except asyncio.CancelledError:
            # The caller was cancelled (its client left): so is the call, as over the wire.
            if not self._task.done():
                self._task.cancel()
            raise
        except BaseException as error:
            raise _failure(self._context, error) from None
        failed = self._context.error()  # a servicer may set a code and return
        if failed is not None:
            raise failed
        return response

    async def code(self) -> grpc.StatusCode:
        await asyncio.wait([self._task])
        return self._context.code_ or grpc.StatusCode.OK


class _ClientStreamCall(_UnaryCall):
    """A client-streaming call's handle, as grpc.aio.StreamUnaryCall: the requests are an
    iterator (sync or async) the handler reads as it would read them off the wire."""

    def _invoke(self, handler: grpc.RpcMethodHandler, requests: Any) -> Any:
        return handler.stream_unary(_own_each(requests, handler), self._context)


async def _own_each(requests: Any, handler: grpc.RpcMethodHandler) -> AsyncIterator[Any]:
    if hasattr(requests, "__aiter__"):
        async for request in requests:
            yield _own(request, handler)
    else:
        for request in requests:
            yield _own(request, handler)


_END = object()


class _StreamCall(_CallHandle):
    """A server-streaming call's handle, as grpc.aio.UnaryStreamCall: read() until EOF, or iterate.

    The handler runs in its own task and hands each message over through a one-slot queue, so a
    reader that stops reading holds the servicer back as HTTP/2 flow control would.
    """

    def __init__(self, handler: grpc.RpcMethodHandler, request: Any, context: _Context) -> None:
        self._context = context
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self._failure: grpc.aio.AioRpcError | None = None
        self._finished = False
        self._task = asyncio.ensure_future(self._run(handler, request))

    async def _run(self, handler: grpc.RpcMethodHandler, request: Any) -> None:
        stream = handler.unary_stream(_own(request, handler), self._context)
        try:
            async with asyncio.timeout(self._context.timeout):
                async for message in stream:
                    self._context.headers_leave()
                    await self._queue.put(message)
        except asyncio.CancelledError:
            # The reader cancelled the call: nobody waits for the end.
            self._failure = _failure(self._context, asyncio.CancelledError())
            await _close(stream)
            self._context.headers_leave()
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)
            raise
        except BaseException as error:
            self._failure = _failure(self._context, error)
        await _close(stream)
        self._context.headers_leave()
        await self._queue.put(_END)

    async def read(self) -> Any:
        if self._finished:
            return grpc.aio.EOF
        message = await self._queue.get()
        if message is _END:
            self._finished = True
            if self._failure is not None:
                raise self._failure
            return grpc.aio.EOF
        return message

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (message := await self.read()) is not grpc.aio.EOF:
            yield message

    async def code(self) -> grpc.StatusCode:
        await asyncio.wait([self._task])
        return self._failure.code() if self._failure is not None else grpc.StatusCode.OK


async def _close(stream: Any) -> None:
    closing = getattr(stream, "aclose", None)
    if closing is not None:
        with contextlib.suppress(Exception):
            await closing()


Propagate = Callable[[list[tuple[str, str | bytes]]], None]


class _Multicallable:
    def __init__(
        self, handler: grpc.RpcMethodHandler, call: type[_UnaryCall] | type[_StreamCall], propagate: Propagate
    ) -> None:
        self._handler = handler
        self._call = call
        self._propagate = propagate

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: MetadataPairs | None = None, **_: Any
    ) -> Any:
        pairs = list(metadata or ())
        self._propagate(pairs)
        return self._call(self._handler, request, _Context(pairs, timeout))


class InProcessChannel:
    """A grpc.aio channel look-alike serving `handlers` in process (see the module docstring).

    `fallback` opens the real channel, on first use, for methods not in `handlers`."""

    def __init__(
        self,
        handlers: Mapping[str, grpc.RpcMethodHandler],
        fallback: Callable[[], grpc.aio.Channel],
        *,
        propagate: Propagate | None = None,
    ) -> None:
        self._handlers = handlers
        self._open_fallback = fallback
        # Adds what the caller's context carries across a call (the trace) to its metadata.
        self._propagate: Propagate = propagate or (lambda _: None)
        self._fallback: grpc.aio.Channel | None = None

    def _remote(self) -> grpc.aio.Channel:
        if self._fallback is None:
            self._fallback = self._open_fallback()
        return self._fallback

    def unary_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None) -> Any:
        handler = self._handlers.get(method)
        if handler is None or handler.unary_unary is None:
            return self._remote().unary_unary(method, request_serializer, response_deserializer)
        return _Multicallable(handler, _UnaryCall, self._propagate)

    def unary_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None) -> Any:
        handler = self._handlers.get(method)
        if handler is None or handler.unary_stream is None:
            return self._remote().unary_stream(method, request_serializer, response_deserializer)
        return _Multicallable(handler, _StreamCall, self._propagate)

    def stream_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None) -> Any:
        handler = self._handlers.get(method)
        if handler is None or handler.stream_unary is None:
            return self._remote().stream_unary(method, request_serializer, response_deserializer)
        return _Multicallable(handler, _ClientStreamCall, self._propagate)

    def stream_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None) -> Any:
        """No bidirectional RPC is served in process: they go over the socket."""
        return self._remote().stream_stream(method, request_serializer, response_deserializer)

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()
            self._fallback = None
