"""Live RPCs as the bridge's gateways hold them: open a stream, wait for its first message
(proof that the server admitted the caller and the subscription is live), then pump it.

    call = await open_stream(upstream.stream_method(...), request, metadata)   # AioRpcError if refused
    async for message in call: ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from relais.v1 import live_pb2

from bridge.marshal import Json, message_to_json, whole_numbers
from bridge.upstream import Upstream

WATCH_SESSION = "/relais.v1.LiveService/WatchSession"
# How long a gateway waits for a live RPC to admit it.
OPEN_TIMEOUT = 10.0


class LiveRpcs:
    """The session stream every WebSocket route holds beside its own RPC."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    def watch_session(self) -> Any:
        return self._upstream.stream_method(WATCH_SESSION, live_pb2.WatchSessionRequest, live_pb2.WatchSessionResponse)


async def open_stream(method: Any, request: Message, metadata: list[tuple[str, str]]) -> tuple[Any, Any]:
    """The call and its first message; the RPC's error if the server refuses it."""
    call = method(request, metadata=metadata)
    try:
        first = await asyncio.wait_for(call.read(), OPEN_TIMEOUT)
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        raise ConnectionAbortedError("the stream ended before it started")
    return call, first


async def pump(
    call: Any,
    deliver: Callable[[Any], Awaitable[None]],
    failed: Callable[[grpc.aio.AioRpcError], Awaitable[None]] | None = None,
) -> grpc.StatusCode | None:
    """Hand each message to `deliver` until the stream ends; its status code (None if cancelled
    here). A stream the server ends with an error is handed to `failed` first."""
    try:
        # read(), as open_stream began: grpc.aio refuses a mix of read() and iteration.
        while (message := await call.read()) is not grpc.aio.EOF:
            await deliver(message)
    except grpc.aio.AioRpcError as error:
        if failed is not None and error.code() != grpc.StatusCode.CANCELLED:
            await failed(error)
        return error.code()
    except asyncio.CancelledError:
        call.cancel()
        raise
    return grpc.StatusCode.OK


def json_of(message: Message) -> Json:
    """A message's JSON, with the whole numbers of Struct values (doubles on the wire) as integers."""
    return whole_numbers(message_to_json(message))


def cancel_all(tasks: dict[Any, asyncio.Task[Any]]) -> None:
    for task in tasks.values():
        task.cancel()
    tasks.clear()


async def while_session_lives(
    rpcs: LiveRpcs, metadata: list[tuple[str, str]], serve: Awaitable[None]
) -> grpc.StatusCode | None:
    """Run `serve` while the caller's session lives. None when `serve` finished; else the status
    that ended the session's stream (UNAUTHENTICATED: the session ended), `serve` then cancelled.
    Callers without a session (anonymous) just serve."""
    serving = asyncio.ensure_future(serve)
    try:
        call, _ = await open_stream(rpcs.watch_session(), live_pb2.WatchSessionRequest(), metadata)
    except (grpc.aio.AioRpcError, ConnectionAbortedError, TimeoutError):
        await serving
        return None
    watching = asyncio.ensure_future(pump(call, _ignore))
    try:
        await asyncio.wait({serving, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (serving, watching):
            if not task.done():
                task.cancel()
        await asyncio.gather(serving, watching, return_exceptions=True)
    if not serving.cancelled():
        serving.result()  # its own exception, if any, is the caller's
        return None
    return None if watching.cancelled() else watching.result()


async def _ignore(message: Any) -> None:
    """A session stream carries nothing after its first message."""
