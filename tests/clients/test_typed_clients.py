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
