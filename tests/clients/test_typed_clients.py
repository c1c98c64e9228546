"""Generated typed clients speak to the real server: betterproto2 sync (grpcio) and async (grpclib)."""

from __future__ import annotations

import asyncio

import grpc
from grpclib.client import Channel
from relais_client import connect
from relais_typed.relais.v1 import GetHealthRequest, HealthStatus, SystemServiceAsyncStub, SystemServiceStub

from tests.support.live import LiveStack


def test_sync_typed_client(stack: LiveStack) -> None:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        reply = SystemServiceStub(channel).get_health(GetHealthRequest())

    assert reply.status == HealthStatus.HEALTHY and reply.db_ok


def test_async_typed_client_over_grpclib(stack: LiveStack) -> None:
    async def call() -> bool:
        channel = Channel("127.0.0.1", stack.grpc_port)
        try:
            reply = await SystemServiceAsyncStub(channel).get_health(GetHealthRequest())
        finally:
            channel.close()
        return reply.db_ok

    assert asyncio.run(call()) is True


def test_relais_client_attaches_credentials(stack: LiveStack) -> None:
    with connect(stack.grpc_target, token="user-token") as client:
        state = client.system.get_manager_health()

    assert state.running is True


def test_identity_over_the_typed_client(stack: LiveStack) -> None:
    from relais_typed.relais.v1 import (
        CreateApiKeyRequest,
        ListUsersRequest,
        LoginRequest,
        SortOrder,
    )

    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    with connect(stack.grpc_target) as anonymous:
        tokens = anonymous.auth.login(LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD))
    with connect(stack.grpc_target, token=tokens.access_token) as admin:
        page = admin.admin_users.list_users(ListUsersRequest(limit=5, sort_by="id", sort_order=SortOrder.ASC))
        key = admin.api_keys.create_api_key(CreateApiKeyRequest(name="typed", scopes=["users:read"]))
    with connect(stack.grpc_target, api_key=key.key) as integration:
        me = integration.users.get_profile()

    assert page.total >= 1 and page.items[0].email == ADMIN_EMAIL and page.limit == 5
    assert me.email == ADMIN_EMAIL and tokens.user.is_admin
