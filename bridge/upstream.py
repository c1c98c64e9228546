"""The bridge's gRPC channel to the server, and one cached callable per RPC."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message
from relais.v1 import access_pb2

from bridge.bindings import Binding, WebSocketBinding
from bridge.forwarding import Forwarding

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
    # Above the 16 KiB of headers the bridge accepts (bridge/middleware.py), whose credentials travel on.
    ("grpc.max_metadata_size", 64 * 1024),
    # Keep the HTTP/2 connection warm so the first request after a pause is not slower.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect quickly after the server restarts: requests fail fast (503) while it is down.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.http2.bdp_probe", 0),
]


CHECK_ACCESS = "/relais.v1.AccessService/CheckAccess"


class InProcess(Protocol):
    """A server in this process that serves the bridge's calls without a socket (see
    server/inprocess.py): a channel look-alike, with `fallback` for what it does not serve."""

    def in_process_channel(self, fallback: Callable[[], grpc.aio.Channel]) -> Any: ...


class Upstream:
    """The server the bridge calls: at `target` over gRPC, or `in_process` when it runs beside it."""

    def __init__(
        self,
        target: str,
        in_process: InProcess | None = None,
        *,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        forwarding: Forwarding | None = None,
    ) -> None:
        self.target = target
        self._in_process = in_process
        # Client interceptors on every call over the socket (OpenTelemetry's, which send the trace as
        # `traceparent`); in process, the trace continues through the task's context instead.
        self._interceptors = list(interceptors)
        # How the HTTP client's address is found and vouched for (every call carries it).
        self.forwarding = forwarding or Forwarding()
        self._channel: Any = None
        self._unary: dict[str, Any] = {}
        self._streams: dict[str, Any] = {}

    @property
    def channel(self) -> Any:
        # Created lazily: grpc.aio channels bind to the running event loop.
        if self._channel is None:
            self._channel = (
                self._socket_channel()
                if self._in_process is None
                else self._in_process.in_process_channel(self._socket_channel)
            )
        return self._channel

    def _socket_channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS, interceptors=self._interceptors or None)

    def unary(self, binding: Binding) -> Any:
        """The unary-unary multicallable of a binding's RPC."""
        return self.unary_method(binding.full_method, binding.request_class, binding.response_class)

    def unary_method(self, method: str, request_class: type[Message], response_class: type[Message]) -> Any:
        """The unary-unary multicallable of `method` ("/package.Service/Method"), created on first use."""
        callable_ = self._unary.get(method)
        if callable_ is None:
            callable_ = self._unary[method] = self.channel.unary_unary(
                method,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
        return callable_

    async def check_access(self, method: str, metadata: list[tuple[str, str]]) -> access_pb2.CheckAccessResponse:
        """Whether the credentials in `metadata` admit their holder to `method`: the server's own
        access decision, for gateways (WebSocket and Socket.IO handshakes). Raises the RPC error
        (UNAUTHENTICATED, PERMISSION_DENIED) when they do not."""
        check = self.unary_method(CHECK_ACCESS, access_pb2.CheckAccessRequest, access_pb2.CheckAccessResponse)
        response: access_pb2.CheckAccessResponse = await check(
            access_pb2.CheckAccessRequest(method=method), metadata=metadata, timeout=10
        )
        return response

    def client_stream(self, binding: Binding) -> Any:
        """The stream-unary multicallable of a binding's RPC (an upload)."""
        callable_ = self._unary.get(binding.full_method)
        if callable_ is None:
            callable_ = self._unary[binding.full_method] = self.channel.stream_unary(
                binding.full_method,
                request_serializer=binding.request_class.SerializeToString,
                response_deserializer=binding.response_class.FromString,
            )
        return callable_

    def server_stream(self, binding: Binding | WebSocketBinding) -> Any:
        """The unary-stream multicallable of a binding's RPC."""
        return self.stream_method(binding.full_method, binding.request_class, binding.response_class)

    def stream_method(self, method: str, request_class: type[Message], response_class: type[Message]) -> Any:
        """The unary-stream multicallable of `method`, created on first use."""
        callable_ = self._streams.get(method)
        if callable_ is None:
            callable_ = self._streams[method] = self.channel.unary_stream(
                method,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
        return callable_

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._unary.clear()
            self._streams.clear()
