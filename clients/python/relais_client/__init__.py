"""Typed Python client for Relais over gRPC.

    from relais_client import connect
    from relais_typed.relais.v1 import GenerateRequest, GetHealthRequest

    with connect("localhost:50051", token=access_token, timeout=10) as relais:
        health = relais.system.get_health(GetHealthRequest())
        print(health.status, health.db_ok)
        # Every stub method takes a deadline and metadata of its own.
        relais.models.list_models(timeout=2, metadata=[("accept-language", "fr")])
        # A server stream is grpcio's call: iterate it, or cancel() it to stop the server's work.
        for event in relais.inference.generate_stream(GenerateRequest(prompt="Hello"), timeout=60):
            print(event.token.text if event.token else "", end="")

Errors are grpc.RpcError with code() and details(). Stubs and messages are betterproto2's
(generated into relais_typed by the repository's tools/generate.py); this module adds
credentials, default deadlines and channel handling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import grpc
from relais_typed.relais.v1 import (
    AccessServiceStub,
    AdminUserServiceStub,
    AgentServiceStub,
    ApiKeyServiceStub,
    AuthServiceStub,
    BackupServiceStub,
    ChatServiceStub,
    ConversationServiceStub,
    DocumentServiceStub,
    EventServiceStub,
    HistoryServiceStub,
    InferenceServiceStub,
    LiveServiceStub,
    MemoryServiceStub,
    MessageServiceStub,
    ModelServiceStub,
    RetrievalServiceStub,
    RoleServiceStub,
    SessionServiceStub,
    SystemServiceStub,
    UserServiceStub,
)

Metadata = Sequence[tuple[str, str]]


class _CallOptionsInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the same metadata (credentials, language…) to every call, after the call's own,
    and a deadline to every call that has none of its own."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self._metadata = tuple(metadata)
        self._timeout = timeout

    def _with_metadata(self, details: Any) -> Any:
        timeout = details.timeout if details.timeout is not None else self._timeout
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata, timeout=timeout)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_metadata(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_metadata(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_metadata(details), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_metadata(details), requests)


class _Same:
    """Default of RelaisClient(closes=…): the client closes the channel it was given."""


_SAME = _Same()


class RelaisClient:
    """One channel, one typed stub per service."""

    def __init__(self, channel: grpc.Channel, *, closes: grpc.Channel | _Same | None = _SAME) -> None:
        self.channel = channel
        # What `close` closes: `channel` itself, the channel under an intercepted one, or
        # nothing for a client derived by with_options (its parent owns the channel).
        self._closes = channel if isinstance(closes, _Same) else closes
        self.system = SystemServiceStub(channel)
        self.auth = AuthServiceStub(channel)
        self.users = UserServiceStub(channel)
        self.admin_users = AdminUserServiceStub(channel)
        self.roles = RoleServiceStub(channel)
        self.sessions = SessionServiceStub(channel)
        self.api_keys = ApiKeyServiceStub(channel)
        self.inference = InferenceServiceStub(channel)
        self.models = ModelServiceStub(channel)
        self.agents = AgentServiceStub(channel)
        self.retrieval = RetrievalServiceStub(channel)
        self.memory = MemoryServiceStub(channel)
        self.documents = DocumentServiceStub(channel)
        self.chats = ChatServiceStub(channel)
        self.messages = MessageServiceStub(channel)
        self.conversations = ConversationServiceStub(channel)
        self.access = AccessServiceStub(channel)
        self.backup = BackupServiceStub(channel)
        self.events = EventServiceStub(channel)
        self.live = LiveServiceStub(channel)
        self.history = HistoryServiceStub(channel)

    def with_options(self, *, timeout: float | None = None, metadata: Metadata = ()) -> RelaisClient:
        """A client on the same channel whose calls carry `metadata` too and, when they
        have no deadline yet, `timeout` seconds. Closing it leaves the channel open."""
        return RelaisClient(
            grpc.intercept_channel(self.channel, _CallOptionsInterceptor(metadata, timeout)), closes=None
        )

    def close(self) -> None:
        if self._closes is not None:
            self._closes.close()

    def __enter__(self) -> RelaisClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def connect(
    target: str,
    *,
    token: str | None = None,
    api_key: str | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float | None = None,
    metadata: Metadata = (),
) -> RelaisClient:
    """A client for the server at `target` ("host:port"): TLS when `credentials` are
    given (e.g. grpc.ssl_channel_credentials()), plaintext otherwise. `timeout` is the
    default deadline of every call in seconds (none when None); `metadata` goes with every call."""
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    sent = list(metadata)
    if token:
        sent.append(("authorization", f"Bearer {token}"))
    if api_key:
        sent.append(("x-api-key", api_key))
    if not sent and timeout is None:
        return RelaisClient(channel)
    intercepted = grpc.intercept_channel(channel, _CallOptionsInterceptor(sent, timeout))
    return RelaisClient(intercepted, closes=channel)


__all__ = ["RelaisClient", "connect"]
