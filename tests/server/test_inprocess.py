"""The co-located bridge's in-process channel answers exactly as the loopback channel does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from server.observability import GRPC_HANDLED
from tests.conftest import stack_settings
from tests.support import services
from tests.support.live import LiveStack

pb = services.pb
ADMIN = [("authorization", "Bearer admin-token")]
SERVICE = f"/{pb.DESCRIPTOR.package}.TranscodingService"
SERVICER = services.TranscodingServicer()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data: Path = tmp_path_factory.mktemp("inprocess")
    settings = stack_settings(data, f"sqlite:///{data / 'relais.db'}")
    stack = services.start_stack_with_test_service(settings, servicer=SERVICER, static_tokens=True)
    yield stack
    stack.stop()


def _socket(stack: LiveStack) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(stack.grpc_target)


async def _outcome(channel: Any, method: str, request: Any, response_class: type[Any]) -> tuple[Any, ...]:
    """What a client learns of a unary call: code, details, response and trailing metadata keys."""
    call = channel.unary_unary(method, request.SerializeToString, response_class.FromString)(
        request, metadata=ADMIN, timeout=10
    )
    try:
        response = await call
    except grpc.aio.AioRpcError as error:
        keys = sorted(key for key, _ in error.trailing_metadata() or ())
        return error.code(), error.details(), None, keys
    keys = sorted(key for key, _ in await call.trailing_metadata())
    return grpc.StatusCode.OK, "", response, keys


CALLS = [
    ("GetItem", pb.GetItemRequest(item_id=7, shelf="a"), pb.Item),
    ("WhoAmI", pb.WhoAmIRequest(), pb.WhoAmIResponse),
    ("Fail", pb.FailRequest(code="NOT_FOUND", message="gone"), pb.Item),
    ("Fail", pb.FailRequest(invalid_fields=["name", "shelf"]), pb.Item),
    ("Fail", pb.FailRequest(code="RESOURCE_EXHAUSTED"), pb.Item),
    ("Fail", pb.FailRequest(crash=True), pb.Item),
]


@pytest.mark.parametrize(("name", "request_message", "response_class"), CALLS)
def test_an_in_process_call_answers_as_the_socket_does(
    live: LiveStack, name: str, request_message: Any, response_class: type[Any]
) -> None:
    method = f"{SERVICE}/{name}"

    async def both() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        socket = _socket(live)
        try:
            in_process = live.server.in_process_channel(lambda: socket)
            return (
                await _outcome(in_process, method, request_message, response_class),
                await _outcome(socket, method, request_message, response_class),
            )
        finally:
            await socket.close()

    local, remote = live.run(both())
    code, details, response, keys = local
    # Request ids differ from call to call; everything else is the same.
    assert (code, response, keys) == (remote[0], remote[2], remote[3])
    assert details.split(" request id ")[0] == remote[1].split(" request id ")[0]


def test_the_interceptors_run_for_in_process_calls(live: LiveStack) -> None:
    method = f"{SERVICE}/Fail"
    counted = GRPC_HANDLED.labels(f"{pb.DESCRIPTOR.package}.TranscodingService", "Fail", "NOT_FOUND")
    before = counted._value.get()

    async def call() -> grpc.StatusCode:
        channel = live.server.in_process_channel(lambda: _socket(live))
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await channel.unary_unary(method)(pb.FailRequest(code="NOT_FOUND"), metadata=ADMIN)
        # Without credentials the authentication interceptor refuses, as over the wire.
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await channel.unary_unary(f"{SERVICE}/WhoAmI")(pb.WhoAmIRequest())
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        return failure.value.code()

    assert live.run(call()) == grpc.StatusCode.NOT_FOUND
    assert counted._value.get() == before + 1


def test_cancelling_an_in_process_stream_stops_its_servicer(live: LiveStack) -> None:
    async def read_two_then_leave() -> tuple[list[int], bool, int]:
        channel = live.server.in_process_channel(lambda: _socket(live))
        finished_before = SERVICER.count_finished
        call = channel.unary_stream(f"{SERVICE}/Count")(pb.CountRequest(to=1000, delay_ms=5), metadata=ADMIN)
        values = [(await call.read()).value, (await call.read()).value]
        call.cancel()
        await asyncio.sleep(0.2)
        return values, call.done(), SERVICER.count_finished - finished_before

    values, done, finished = live.run(read_two_then_leave())
    # The servicer never reached its end: it was cancelled where it waited.
    assert values == [0, 1] and done and finished == 0


def test_a_deadline_ends_an_in_process_stream(live: LiveStack) -> None:
    method = f"{SERVICE}/Count"

    async def too_slow() -> grpc.StatusCode:
        channel = live.server.in_process_channel(lambda: _socket(live))
        call = channel.unary_stream(method)(pb.CountRequest(to=10, delay_ms=500), metadata=ADMIN, timeout=0.1)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for _ in call:
                pass
        return failure.value.code()

    assert live.run(too_slow()) == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_stream_of_one_message_keeps_it(live: LiveStack) -> None:
    method = f"{SERVICE}/Count"

    async def one() -> list[int]:
        channel = live.server.in_process_channel(lambda: _socket(live))
        call = channel.unary_stream(method)(pb.CountRequest(to=1), metadata=ADMIN)
        return [message.value async for message in call]

    assert live.run(one()) == [0]


def test_methods_it_does_not_serve_go_over_the_socket(live: LiveStack) -> None:
    async def check() -> int:
        socket = _socket(live)
        try:
            channel = live.server.in_process_channel(lambda: socket)
            health = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                health_pb2.HealthCheckRequest.SerializeToString,
                health_pb2.HealthCheckResponse.FromString,
            )
            response = await health(health_pb2.HealthCheckRequest(), timeout=5)
            return int(response.status)
        finally:
            await socket.close()

    assert live.run(check()) == health_pb2.HealthCheckResponse.SERVING
