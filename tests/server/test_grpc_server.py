"""The gRPC server itself: reflection, standard health, graceful drain, metrics, logs."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.conftest import stack_settings
from tests.support import services
from tests.support.live import LiveStack


def test_reflection_lists_every_service_like_grpcurl_list(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)

    names = set(database.get_services())

    assert {"relais.v1.SystemService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    method = database.FindFileContainingSymbol("relais.v1.SystemService")
    assert method.name == "relais/v1/system.proto"


def test_standard_health_check_reports_serving(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    overall = stub.Check(health_pb2.HealthCheckRequest(service=""))
    system = stub.Check(health_pb2.HealthCheckRequest(service="relais.v1.SystemService"))

    assert overall.status == system.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/relais.v1.SystemService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as raised:
        call(b"")
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_non_public_rpc_needs_credentials_over_grpc(channel: grpc.Channel) -> None:
    stub = services.pb_grpc.TranscodingServiceStub(channel)

    with pytest.raises(grpc.RpcError) as raised:
        stub.WhoAmI(services.pb.WhoAmIRequest())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    reply = stub.WhoAmI(services.pb.WhoAmIRequest(), metadata=[("authorization", "Bearer admin-token")])
    assert reply.subject == "admin"


def test_shutdown_drains_in_flight_streams_and_refuses_new_calls(tmp_path: Path) -> None:
    servicer = services.TranscodingServicer()
    live = services.start_stack_with_test_service(
        stack_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), servicer=servicer
    )
    received: list[int] = []
    stream_done = threading.Event()

    def consume() -> None:
        with grpc.insecure_channel(live.grpc_target) as channel:
            stub = services.pb_grpc.TranscodingServiceStub(channel)
            for reply in stub.Count(services.pb.CountRequest(to=10, delay_ms=100)):
                received.append(reply.value)
        stream_done.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    while len(received) < 2:
        threading.Event().wait(0.01)

    async def stop_with_grace() -> None:
        await live.server.stop(grace=5)

    stopping = threading.Thread(target=live.run, args=(stop_with_grace(),))
    stopping.start()
    # A new call is refused once the stop has landed (a call answered before that is no fault).
    deadline = time.monotonic() + 8
    while True:
        with grpc.insecure_channel(live.grpc_target) as late:
            try:
                services.pb_grpc.TranscodingServiceStub(late).GetItem(services.pb.GetItemRequest(item_id=1), timeout=1)
            except grpc.RpcError as error:
                refused = error
                break
        assert time.monotonic() < deadline, "new calls were still answered"
        threading.Event().wait(0.05)
    stopping.join()
    consumer.join(10)

    # grpc core refuses a call that races its shutdown as CANCELLED, one after it as UNAVAILABLE.
    refusals = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
    assert refused.code() in refusals
    assert stream_done.is_set() and received == list(range(10))
    assert servicer.count_finished == 1
    live._loop.call_soon_threadsafe(live._loop.stop)


def test_metrics_cover_grpc_and_http(http: httpx.Client, channel: grpc.Channel) -> None:
    from relais.v1 import system_pb2, system_pb2_grpc

    http.get("/health")
    system_pb2_grpc.SystemServiceStub(channel).GetHealth(system_pb2.GetHealthRequest())

    text = http.get("/metrics").text

    assert (
        'relais_grpc_server_handled_total{grpc_code="OK",grpc_method="GetHealth",grpc_service="relais.v1.SystemService"}'
        in text
    )
    assert 'relais_grpc_server_handling_seconds_bucket{grpc_method="GetHealth"' in text
    assert 'relais_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'relais_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}' in text
    assert "relais_data_dir_free_bytes" in text


def test_credentials_never_reach_the_logs(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    secret = "user-token"
    with caplog.at_level(logging.DEBUG):
        http.get(
            "/v1/whoami",
            headers={"Authorization": f"Bearer {secret}", "X-API-Key": secret, "Cookie": f"access_token={secret}"},
        )
        http.post("/v1/sessions", json={"user": "carol", "password": "hunter2"})
        http.post("/v1/fail", json={"crash": True, "message": f"token={secret}"})
        asyncio.run(asyncio.sleep(0.1))

    # Everything the service logged (the test's own HTTP client, httpx/httpcore, is not the service).
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "rpc method=/relaistest.v1.TranscodingService/WhoAmI code=OK" in text
    assert secret not in text and "hunter2" not in text and "tok-carol" not in text


def test_metrics_record_websockets_by_their_real_outcome(stack: LiveStack, http: httpx.Client) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = stack.base_url.replace("http://", "ws://") + "/llm/stream"
    with connect(f"{url}?token=user-token") as socket:
        socket.close()
    with pytest.raises(InvalidStatus), connect(f"{url}?token=forged"):
        pass

    text = http.get("/metrics").text

    assert 'relais_http_requests_total{method="WS",route="/llm/stream",status="101"}' in text
    assert 'relais_http_requests_total{method="WS",route="/llm/stream",status="401"}' in text
    assert 'route="/llm/stream",status="500"' not in text
