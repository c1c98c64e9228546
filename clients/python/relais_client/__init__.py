"""Typed Python client for Relais over gRPC.

    from relais_client import connect

    with connect("localhost:50051", token=access_token) as relais:
        health = relais.system.get_health()
        print(health.status, health.db_ok)

Stubs and messages are betterproto2's (generated into gen/python/relais_typed);
this module only adds credentials and channel handling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import grpc
from relais_typed.relais.v1 import (
    AdminUserServiceStub,
    AgentServiceStub,
    ApiKeyServiceStub,
    AuthServiceStub,
    ChatServiceStub,
    ConversationServiceStub,
    DocumentServiceStub,
    InferenceServiceStub,
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


class _CredentialsInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the same metadata (credentials) to every call."""

    def __init__(self, metadata: Metadata) -> None:
        self._metadata = tuple(metadata)

    def _with_metadata(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_metadata(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_metadata(details), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_metadata(details), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_metadata(details), requests)


class RelaisClient:
    """One channel, one typed stub per service."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
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

    def close(self) -> None:
        self.channel.close()

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
) -> RelaisClient:
    """A client for the server at `target` ("host:port"): TLS when `credentials` are
    given (e.g. grpc.ssl_channel_credentials()), plaintext otherwise."""
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    metadata = []
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    if api_key:
        metadata.append(("x-api-key", api_key))
    if metadata:
        channel = grpc.intercept_channel(channel, _CredentialsInterceptor(metadata))
    return RelaisClient(channel)


__all__ = ["RelaisClient", "connect"]
