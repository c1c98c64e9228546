"""The Triton stand-in speaks Triton's gRPC protocol: checked with tritonclient and with raw stub calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput, InferRequestedOutput, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor, serialize_byte_tensor

from tests.support.triton_standin import StandInModel, TritonStandIn, decode_request_inputs, default_tokens

Serve = Callable[..., Awaitable[TritonStandIn]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start a stand-in serving the given models; stopped at teardown."""
    running: list[TritonStandIn] = []

    async def start(*models: StandInModel) -> TritonStandIn:
        stand_in = TritonStandIn(models)
        await stand_in.start()
        running.append(stand_in)
        return stand_in

    yield start
    for stand_in in running:
        await stand_in.stop()


# --- request builders -------------------------------------------------------------------------


def _bytes_input(name: str, values: list[bytes], shape: list[int]) -> InferInput:
    tensor = InferInput(name, shape, "BYTES")
    tensor.set_data_from_numpy(np.array(values, dtype=np.object_).reshape(shape))
    return tensor


def _input(name: str, datatype: str, array: np.ndarray) -> InferInput:
    tensor = InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def vllm_inputs(prompt: str, *, stream: bool = True, **sampling: Any) -> list[InferInput]:
    inputs = [
        _bytes_input("text_input", [prompt.encode()], [1]),
        _input("stream", "BOOL", np.array([stream])),
        _bytes_input("sampling_parameters", [json.dumps(sampling).encode()], [1]),
    ]
    if not stream:
        inputs.append(_input("exclude_input_in_output", "BOOL", np.array([True])))
    return inputs


def trtllm_inputs(prompt: str, max_tokens: int, *, stream: bool = True, stop: Iterable[str] = ()) -> list[InferInput]:
    inputs = [
        _bytes_input("text_input", [prompt.encode()], [1, 1]),
        _input("max_tokens", "INT32", np.array([[max_tokens]], dtype=np.int32)),
        _input("stream", "BOOL", np.array([[stream]])),
        _input("temperature", "FP32", np.array([[0.5]], dtype=np.float32)),
        _input("random_seed", "UINT64", np.array([[7]], dtype=np.uint64)),
    ]
    if stop:
        words = [word.encode() for word in stop]
        inputs.append(_bytes_input("stop_words", words, [1, len(words)]))
    return inputs


def raw_request(
    request_id: str,
    prompt: str,
    *,
    model: str = "m",
    max_tokens: int = 3,
    empty_final: bool = False,
    convention: str = "vllm",
) -> service_pb2.ModelInferRequest:
    """A ModelInferRequest built by hand, as a client not using tritonclient would."""
    inputs = vllm_inputs(prompt, max_tokens=max_tokens) if convention == "vllm" else trtllm_inputs(prompt, max_tokens)
    request = service_pb2.ModelInferRequest(model_name=model, id=request_id)
    for tensor in inputs:
        request.inputs.append(tensor._get_tensor())
        request.raw_input_contents.append(tensor._get_content())
    if empty_final:
        request.parameters["triton_enable_empty_final_response"].bool_param = True
    return request


async def raw_stream(
    url: str, requests: list[service_pb2.ModelInferRequest]
) -> list[service_pb2.ModelStreamInferResponse]:
    """Send the requests on one stream, half-close, and collect every response until the server ends it."""
    async with grpc.aio.insecure_channel(url) as channel:
        call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(iter(requests))
        responses = [response async for response in call]
        assert await call.code() == grpc.StatusCode.OK
    return responses


def text_of(response: service_pb2.ModelStreamInferResponse) -> str:
    infer = response.infer_response
    assert [output.name for output in infer.outputs] == ["text_output"]
    assert infer.outputs[0].datatype == "BYTES"
    assert not infer.outputs[0].HasField("contents")
    (element,) = deserialize_bytes_tensor(infer.raw_output_contents[0])
    return bytes(element).decode()


def is_final(response: service_pb2.ModelStreamInferResponse) -> bool:
    return bool(response.infer_response.parameters["triton_final_response"].bool_param)


# --- tritonclient -------------------------------------------------------------------------------


async def test_tritonclient_streams_vllm_deltas_then_ends(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m"))
    client = triton_aio.InferenceServerClient(stand_in.url)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield {"model_name": "m", "inputs": vllm_inputs("Hello", max_tokens=4, temperature=0.2), "request_id": "r1"}

    results = []
    # The request iterator ends at once (half-close): the stream must still deliver everything, then end.
    async for result, error in client.stream_infer(requests()):
        assert error is None
        results.append(result)
    await client.close()

    deltas = [result.as_numpy("text_output")[0].decode() for result in results]
    assert deltas == default_tokens("Hello", 4) == ["tok0 ", "é ", "tok2 ", "tok3 "]
    responses = [result.get_response() for result in results]
    assert {response.id for response in responses} == {"r1"}
    assert {(response.model_name, response.model_version) for response in responses} == {("m", "1")}
    assert [response.parameters["triton_final_response"].bool_param for response in responses] == [
        False,
        False,
        False,
        True,
    ]
    assert (stand_in.started, stand_in.completed, stand_in.active, stand_in.tokens_sent) == (1, 1, 0, 4)
    (received,) = stand_in.requests
    assert json.loads(decode_request_inputs(received)["sampling_parameters"][0]) == {
        "max_tokens": 4,
        "temperature": 0.2,
    }


async def test_tritonclient_rejects_the_reserved_empty_final_parameter(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m"))
    client = triton_aio.InferenceServerClient(stand_in.url)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield {
            "model_name": "m",
            "inputs": vllm_inputs("x"),
            "parameters": {"triton_enable_empty_final_response": True},
        }

    # tritonclient raises InferenceServerException("... reserved parameter ...") inside the request
    # iterator, which grpc.aio consumes in its own task: it logs the error and cancels the call, so
    # the caller only sees asyncio.CancelledError. Hence the raw stub for the opt-in below.
    with pytest.raises(asyncio.CancelledError):
        async for _ in client.stream_infer(requests()):
            pass
    await client.close()
    assert stand_in.requests == []


async def test_tensorrtllm_convention(serve: Serve) -> None:
    stand_in = await serve(StandInModel("ensemble", convention="tensorrtllm"))
    client = triton_aio.InferenceServerClient(stand_in.url)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield {
            "model_name": "ensemble",
            "inputs": trtllm_inputs("Hi", 6, stop=["tok3"]),
            "outputs": [InferRequestedOutput("text_output")],
            "request_id": "s",
        }
        yield {"model_name": "ensemble", "inputs": trtllm_inputs("Hi", 3, stream=False), "request_id": "n"}

    by_id: dict[str, list[Any]] = {"s": [], "n": []}
    async for result, error in client.stream_infer(requests()):
        assert error is None
        by_id[result.get_response().id].append(result)
    await client.close()

    # Streaming: deltas in [1,1] tensors; TensorRT-LLM keeps the matched stop word and stops there.
    assert [result.as_numpy("text_output").shape for result in by_id["s"]] == [(1, 1)] * 4
    assert [result.as_numpy("text_output")[0, 0].decode() for result in by_id["s"]] == [
        "tok0 ",
        "é ",
        "tok2 ",
        "tok3",
    ]
    # The ensemble sends FINAL on its own, which Triton drops without the opt-in: nothing is marked final.
    assert not any(result.get_response().parameters["triton_final_response"].bool_param for result in by_id["s"])
    # Not streaming: one response with the whole text (prompt included, as exclude_input_in_output is unset).
    (whole,) = by_id["n"]
    assert whole.as_numpy("text_output")[0, 0].decode() == "Hi" + "".join(default_tokens("Hi", 3))
    assert whole.get_response().parameters["triton_final_response"].bool_param
    assert stand_in.completed == 2


async def test_metadata_readiness_and_unary_infer(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m"), StandInModel("ensemble", convention="tensorrtllm"))
    client = triton_aio.InferenceServerClient(stand_in.url)
    assert await client.is_server_live()
    assert await client.is_server_ready()
    assert await client.is_model_ready("m")
    assert await client.is_model_ready("ensemble", "1")
    assert not await client.is_model_ready("m", "2")
    assert not await client.is_model_ready("nope")

    metadata = await client.get_model_metadata("ensemble")
    shapes = {tensor.name: (tensor.datatype, list(tensor.shape)) for tensor in metadata.inputs}
    assert shapes["text_input"] == ("BYTES", [-1, 1])
    assert shapes["max_tokens"] == ("INT32", [-1, 1])
    config = (await client.get_model_config("m")).config
    assert config.backend == "vllm"
    assert config.model_transaction_policy.decoupled

    # Triton answers UNAVAILABLE (not NOT_FOUND) for an unknown model.
    with pytest.raises(InferenceServerException) as unknown:
        await client.get_model_metadata("nope")
    assert unknown.value.status() == "StatusCode.UNAVAILABLE"
    assert unknown.value.message() == "Request for unknown model: 'nope' is not found"

    # Decoupled models only stream.
    with pytest.raises(InferenceServerException) as unary:
        await client.infer("m", vllm_inputs("x"))
    assert unary.value.status() == "StatusCode.UNIMPLEMENTED"
    assert "doesn't support models with decoupled transaction policy" in unary.value.message()
    await client.close()


# --- raw stub -------------------------------------------------------------------------------------


async def test_final_flag_placement_per_convention(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m"), StandInModel("ensemble", convention="tensorrtllm"))

    # vLLM sends FINAL with its last response, so the opt-in adds no empty response.
    responses = await raw_stream(stand_in.url, [raw_request("v", "p", max_tokens=2, empty_final=True)])
    assert [(text_of(r), is_final(r)) for r in responses] == [("tok0 ", False), ("é ", True)]

    # The ensemble sends FINAL on its own: with the opt-in it arrives as an empty response...
    responses = await raw_stream(
        stand_in.url,
        [raw_request("t", "p", model="ensemble", max_tokens=2, empty_final=True, convention="tensorrtllm")],
    )
    assert [is_final(r) for r in responses] == [False, False, True]
    empty = responses[-1].infer_response
    assert (empty.id, empty.model_name, len(empty.outputs), len(empty.raw_output_contents)) == ("t", "ensemble", 0, 0)
    assert [text_of(r) for r in responses[:-1]] == ["tok0 ", "é "]

    # ...and without it the flag is dropped; the stream still ends once the client half-closed.
    responses = await raw_stream(
        stand_in.url, [raw_request("t2", "p", model="ensemble", max_tokens=2, convention="tensorrtllm")]
    )
    assert [is_final(r) for r in responses] == [False, False]

    # separate_final overrides the convention.
    stand_in.models["m"].separate_final = True
    responses = await raw_stream(stand_in.url, [raw_request("v2", "p", max_tokens=1, empty_final=True)])
    assert [(len(r.infer_response.outputs), is_final(r)) for r in responses] == [(1, False), (0, True)]


async def test_two_requests_interleave_on_one_stream(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", token_delay=0.005))
    responses = await raw_stream(
        stand_in.url,
        [raw_request("a", "first", max_tokens=6, empty_final=True), raw_request("b", "second", max_tokens=6)],
    )
    ids = [response.infer_response.id for response in responses]
    assert sorted(ids) == ["a"] * 6 + ["b"] * 6
    assert ids.index("b") < len(ids) - 1 - ids[::-1].index("a"), f"not interleaved: {ids}"
    for request_id in ("a", "b"):
        own = [response for response in responses if response.infer_response.id == request_id]
        assert "".join(text_of(response) for response in own) == "".join(default_tokens("", 6))
        assert [is_final(response) for response in own] == [False] * 5 + [True]
    assert (stand_in.started, stand_in.completed, stand_in.active) == (2, 2, 0)


async def test_fail_after_sends_error_and_nothing_more(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", fail_after=2, error_text="engine fell over"))
    responses = await raw_stream(stand_in.url, [raw_request("f", "p", max_tokens=5, empty_final=True)])
    assert [text_of(r) for r in responses[:2]] == ["tok0 ", "é "]
    assert not any(is_final(r) for r in responses[:2])
    error = responses[2]
    assert len(responses) == 3
    assert error.error_message == "engine fell over"
    # Backends send their error with the FINAL flag; Triton keeps the id so the client can tell which failed.
    assert (error.infer_response.id, error.infer_response.model_name, is_final(error)) == ("f", "m", True)
    assert (stand_in.started, stand_in.completed, stand_in.failed, stand_in.active) == (1, 0, 1, 0)

    # tritonclient turns it into an InferenceServerException (and drops the id).
    client = triton_aio.InferenceServerClient(stand_in.url)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield {"model_name": "m", "inputs": vllm_inputs("p", max_tokens=5)}

    outcomes = [(result, error) async for result, error in client.stream_infer(requests())]
    await client.close()
    assert [error is None for _, error in outcomes] == [True, True, False]
    assert outcomes[-1][1].message() == "engine fell over"


async def test_unknown_model_and_bad_requests_get_error_responses(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m"))
    missing = service_pb2.ModelInferRequest(model_name="m", id="missing")
    wrong_shape = raw_request("shape", "p")
    wrong_shape.inputs[0].shape[:] = [1, 1]  # the TensorRT-LLM shape, sent to a vLLM model
    # bytes() of tritonclient's serialize_byte_tensor result is the object pointer, not the data (use .item()).
    pointer = raw_request("pointer", "p")
    pointer.raw_input_contents[0] = bytes(serialize_byte_tensor(np.array([b"p"], dtype=np.object_)))
    requests = [
        raw_request("u", "p", model="nope"),
        missing,
        wrong_shape,
        pointer,
        raw_request("ok", "p", max_tokens=1),
    ]
    responses = await raw_stream(stand_in.url, requests)
    by_id = {response.infer_response.id: response for response in responses}
    assert by_id["u"].error_message == "Request for unknown model: 'nope' is not found"
    # Frontend errors carry only the id, and no final flag.
    assert by_id["u"].infer_response.model_name == ""
    assert "triton_final_response" not in by_id["u"].infer_response.parameters
    assert by_id["missing"].error_message.startswith("[request id: missing] expected number of inputs between 1 and 4")
    assert "missing required input(s) ['text_input']" in by_id["missing"].error_message
    assert by_id["shape"].error_message == (
        "[request id: shape] unexpected shape for input 'text_input' for model 'm'. Expected [1], got [1,1]"
    )
    assert by_id["pointer"].error_message.startswith(
        "[request id: pointer] malformed BYTES data for input 'text_input'"
    )
    # The stream stays usable for the valid request.
    assert (text_of(by_id["ok"]), is_final(by_id["ok"])) == ("tok0 ", True)
    assert (stand_in.rejected, stand_in.started, stand_in.completed) == (4, 1, 1)
    assert [request.id for request in stand_in.requests] == ["u", "missing", "shape", "pointer", "ok"]


async def test_inputs_in_contents_and_non_streaming_vllm(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", tokens=lambda prompt, n: [f"<{prompt}>", " STOP here", "never"]))
    request = service_pb2.ModelInferRequest(model_name="m", id="c")
    text = request.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    text.contents.bytes_contents.append("héllo".encode())
    stream = request.inputs.add(name="stream", datatype="BOOL", shape=[1])
    stream.contents.bool_contents.append(False)
    sampling = request.inputs.add(name="sampling_parameters", datatype="BYTES", shape=[1])
    sampling.contents.bytes_contents.append(json.dumps({"max_tokens": "8", "stop": ["STOP"]}).encode())
    # Not streaming: one response, prompt prepended (exclude_input_in_output unset), cut before the stop string.
    (response,) = await raw_stream(stand_in.url, [request])
    assert (text_of(response), is_final(response)) == ("héllo<héllo> ", True)
    assert list(response.infer_response.outputs[0].shape) == [1]


async def test_cancelling_the_call_stops_generation(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", token_delay=0.002))
    async with grpc.aio.insecure_channel(stand_in.url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        call = stub.ModelStreamInfer(iter([raw_request("long", "p", max_tokens=10_000)]))
        received = 0
        async for response in call:
            assert response.infer_response.id == "long"
            received += 1
            if received == 3:
                call.cancel()
                break
    await stand_in.wait_idle(timeout=2)
    assert (stand_in.cancelled, stand_in.active, stand_in.completed) == (1, 0, 0)
    assert stand_in.tokens_sent < 10_000


async def test_tritonclient_cancel_stops_every_request_of_the_stream(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", token_delay=0.002))
    client = triton_aio.InferenceServerClient(stand_in.url)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        for request_id in ("x", "y"):
            yield {"model_name": "m", "inputs": vllm_inputs("p", max_tokens=10_000), "request_id": request_id}

    responses = client.stream_infer(requests())
    async for result, error in responses:
        assert error is None and result is not None
        if {stand_in.active, stand_in.started} == {2}:
            responses.cancel()
            break
    await stand_in.wait_idle(timeout=2)
    assert (stand_in.cancelled, stand_in.active) == (2, 0)
    await client.close()


async def test_stopping_the_server_cancels_in_flight_requests(serve: Serve) -> None:
    stand_in = await serve(StandInModel("m", token_delay=0.002))
    async with grpc.aio.insecure_channel(stand_in.url) as channel:
        call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(
            iter([raw_request("z", "p", max_tokens=10_000)])
        )
        await call.read()
        await stand_in.stop()
        assert (stand_in.cancelled, stand_in.active) == (1, 0)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() is not grpc.aio.EOF:
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_restarts_on_a_fixed_port() -> None:
    first = TritonStandIn([StandInModel("m")])
    port = await first.start()
    assert first.url == f"127.0.0.1:{port}" and port > 0
    await first.stop()
    # A new stand-in on the same port: what a test does to bring "Triton" back after an outage.
    async with TritonStandIn([StandInModel("m")], port=port) as second:
        client = triton_aio.InferenceServerClient(second.url)
        assert await client.is_model_ready("m")
        await client.close()


def test_serialization_matches_tritonclient() -> None:
    from tests.support.triton_standin import _deserialize_bytes, _serialize_bytes

    values = [b"", "é".encode(), b"abc"]
    assert _serialize_bytes(values) == serialize_byte_tensor(np.array(values, dtype=np.object_)).item()
    assert _deserialize_bytes(_serialize_bytes(values)) == values
