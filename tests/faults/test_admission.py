"""Issue 14, item 5: admission is explicit. Beyond RELAIS_MAX_STREAMS generations at once, a stream
waits in a bounded queue and is told its place (status QUEUED, queue_position), and beyond the
queue, or for a call that cannot be told (unary), the answer is 429 with Retry-After at once.
On a real `relais serve` process, over gRPC and HTTP (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest
from relais.v1 import events_pb2, inference_pb2, inference_pb2_grpc

from tests.support.process import RelaisProcess
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

pytestmark = pytest.mark.slow

TOKENS = 10  # a second of tokens per stream
USER = "user-token"


@pytest.fixture(scope="module")
def relais(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelaisProcess]:
    triton = LiveTriton([StandInModel(name="paced", token_delay=0.1)]).start()
    model = {"key": "paced", "backend": "triton", "url": triton.url, "model_name": "paced", "context_window": 4096}
    process = RelaisProcess(
        tmp_path_factory.mktemp("admission"),
        RELAIS_MODELS=json.dumps([model]),
        RELAIS_MAX_STREAMS="2",
        RELAIS_STREAM_QUEUE="2",
    )
    with process:
        yield process
    triton.close()


def login(relais: RelaisProcess) -> str:
    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    response = httpx.post(
        f"{relais.base_url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    return str(response.json()["access_token"])


async def grpc_stream(relais: RelaisProcess, token: str) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(relais.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(prompt="x", model="paced", max_tokens=TOKENS)
        call = stub.GenerateStream(request, metadata=(("authorization", f"Bearer {token}"),))
        seen: dict[str, Any] = {"places": [], "tokens": 0, "end": ""}
        try:
            async for event in call:
                if event.HasField("status") and event.status.state == events_pb2.STREAM_STATE_QUEUED:
                    seen["places"].append(event.status.queue_position)
                seen["tokens"] += event.token.token_count
                seen["end"] = event.WhichOneof("event")
        except grpc.aio.AioRpcError as error:
            seen["end"] = error.code().name
            seen["retry-after"] = dict(error.trailing_metadata() or ()).get("retry-after")
        return seen


async def sse_stream(relais: RelaisProcess, token: str) -> dict[str, Any]:
    body = {"prompt": "x", "model": "paced", "max_tokens": TOKENS}
    seen: dict[str, Any] = {"places": [], "tokens": 0, "end": ""}
    async with (
        httpx.AsyncClient(base_url=relais.base_url, timeout=60) as http,
        http.stream("POST", "/llm/stream", json=body, headers={"authorization": f"Bearer {token}"}) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            return {**seen, "end": response.status_code, "body": response.json(), "headers": response.headers}
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: {"):
                data = orjson.loads(line[6:])
                if kind == "status" and data["status"]["state"] == "queued":
                    seen["places"].append(data["status"]["queue_position"])
                seen["tokens"] += data.get("token", {}).get("token_count", 0)
                seen["end"] = kind
    return seen


async def five_at_once(relais: RelaisProcess, opener: Any) -> list[dict[str, Any]]:
    token = login(relais)
    tasks = []
    for _ in range(5):  # one after the other, so that the order of arrival is known
        tasks.append(asyncio.create_task(opener(relais, token)))
        await asyncio.sleep(0.15)
    return list(await asyncio.gather(*tasks))


@pytest.mark.parametrize("transport", ["grpc", "sse"])
def test_beyond_the_limit_streams_are_told_their_place_and_beyond_the_queue_refused(
    relais: RelaisProcess, transport: str
) -> None:
    outcomes = asyncio.run(five_at_once(relais, grpc_stream if transport == "grpc" else sse_stream))
    first, second, third, fourth, fifth = outcomes
    for started in (first, second):
        assert started["places"] == [] and started["tokens"] == TOKENS and started["end"] == "final", started
    # Waiting in order, told their place as it changed, then served whole.
    assert third["places"][0] == 1 and fourth["places"][:1] == [2] and fourth["places"][-1] == 1, outcomes
    for waited in (third, fourth):
        assert waited["tokens"] == TOKENS and waited["end"] == "final", waited
    if transport == "grpc":
        assert fifth["end"] == "RESOURCE_EXHAUSTED" and fifth["retry-after"] == "1", fifth
    else:
        assert fifth["end"] == 429 and fifth["body"]["code"] == "TOO_MANY_STREAMS", fifth
        assert fifth["headers"]["retry-after"] == "1"


def test_a_unary_call_cannot_wait_silently_it_is_refused_at_once(relais: RelaisProcess) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], httpx.Response]:
        token = login(relais)
        streams = [asyncio.create_task(grpc_stream(relais, token)) for _ in range(2)]
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=relais.base_url, timeout=60) as http:
            unary = await http.post(
                "/llm/infer", json={"prompt": "x", "model": "paced"}, headers={"authorization": f"Bearer {token}"}
            )
        return list(await asyncio.gather(*streams)), unary

    streams, unary = asyncio.run(scenario())
    assert unary.status_code == 429 and unary.headers["retry-after"] == "1", unary.text
    assert all(stream["end"] == "final" for stream in streams)


def test_the_process_is_left_with_no_place_taken(relais: RelaisProcess) -> None:
    """After the refusals and the waits, the two places are free again: two streams start at once."""
    outcomes = asyncio.run(five_at_once(relais, grpc_stream))
    assert [len(outcome["places"]) > 0 for outcome in outcomes[:2]] == [False, False]
