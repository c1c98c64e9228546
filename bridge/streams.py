"""Server-streaming RPCs as HTTP: what every framing (bridge/framings/) shares.

- the RPC's first message is awaited before anything is committed, so a call that fails at
  once (bad request, backend down) still gets a proper HTTP status and error body; but when
  it has not come within the keep-alive interval (the request waits in the model's queue),
  the response begins and keep-alives flow until it does;
- keep-alives (SSE comments, WebSocket pings) are sent whenever the stream is quiet that long;
- a client that goes away cancels the RPC, and the server cancels the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from bridge.bindings import Binding, WebSocketBinding
from bridge.errors import rpc_error_response, rpc_failure
from bridge.framings.registry import SseFraming, event_kind
from bridge.marshal import ParseError, json_to_message
from bridge.upstream import Upstream

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Quiet:
    """What Pump.next returns when nothing came within the keep-alive interval."""


QUIET = Quiet()


class Pump:
    """Reads a call in its own task, so the reader can wait with a timeout without cancelling
    the call's read (which would cancel the call)."""

    def __init__(self, call: Any) -> None:
        self.call = call
        # One message at most waits here: a slow reader holds the call back, and the server
        # coalesces tokens instead of this queue growing.
        self._queue: asyncio.Queue[Message | BaseException | None] = asyncio.Queue(1)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.call:
                await self._queue.put(message)
            await self._queue.put(None)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the call's error, raised to the reader in turn
            await self._queue.put(error)

    async def next(self, quiet_after: float | None = None) -> Message | Quiet | None:
        """The next message, None at the end, QUIET after `quiet_after` seconds; raises the call's error."""
        try:
            item = await asyncio.wait_for(self._queue.get(), quiet_after)
        except TimeoutError:
            return QUIET
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.call.cancel()
        self._task.cancel()


async def first_message(call: Any) -> Message | None:
    """The stream's first message (None if it ended empty); raises the call's error."""
    message = await call.read()
    return None if message is grpc.aio.EOF else message


async def sse_response(
    pump: Pump, binding: Binding, framing: SseFraming, headers: Any, request_id: str, keepalive: float
) -> Response:
    """The stream as server-sent events in `framing`, ending with its end marker."""
    try:
        first = await pump.next(keepalive)
    except grpc.aio.AioRpcError as error:
        pump.close()
        metadata = headers(error.initial_metadata(), error.trailing_metadata())
        return rpc_error_response(error, request_id, metadata, binding.error_format)
    initial = headers(await pump.call.initial_metadata()) if not isinstance(first, Quiet) else {}

    async def body() -> AsyncIterator[bytes]:
        error_sent = False
        try:
            message = first
            while message is not None:
                if isinstance(message, Quiet):
                    yield framing.keepalive()
                else:
                    error_sent = error_sent or event_kind(message) == "error"
                    frame = framing.frame(message)
                    if frame is not None:
                        yield frame
                message = await pump.next(keepalive)
            yield framing.end()
        except grpc.aio.AioRpcError as error:
            if not error_sent:
                yield framing.failure(rpc_failure(error).body(request_id, binding.error_format))
        finally:
            # The client went away (or the stream ended): stop the RPC, hence the generation.
            pump.close()

    return StreamingResponse(body(), media_type="text/event-stream", headers={**SSE_HEADERS, **initial})


def now_ms() -> int:
    return int(time.time() * 1000)


class WebSocketError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class JsonSocket:
    """What every WebSocket framing does the same way: JSON text frames in and out, sends
    serialised (tasks share the socket), request messages read with the bridge's JSON rules."""

    def __init__(self, websocket: WebSocket, binding: WebSocketBinding, upstream: Upstream) -> None:
        self.socket = websocket
        self.binding = binding
        self.upstream = upstream
        self._send_lock = asyncio.Lock()

    async def receive(self) -> Any:
        """The next frame's JSON; WebSocketError for a binary frame or malformed JSON."""
        try:
            raw = await self.socket.receive_text()
        except KeyError:  # a binary frame
            raise WebSocketError("BAD_REQUEST", "Send JSON text frames") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise WebSocketError("BAD_REQUEST", f"Malformed JSON: {error}") from None

    def request_message(self, data: dict[str, Any]) -> Message:
        message = self.binding.request_class()
        try:
            json_to_message(data, message)
        except ParseError as error:
            raise WebSocketError("VALIDATION_ERROR", str(error)) from None
        return message

    async def send(self, payload: dict[str, Any]) -> None:
        if self.socket.application_state != WebSocketState.CONNECTED:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.socket.send_text(orjson.dumps(payload).decode())
