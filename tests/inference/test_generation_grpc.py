"""InferenceService over gRPC against the Triton stand-in: events, errors, cancellation."""

from __future__ import annotations

import time

import grpc
import pytest
from relais.v1 import events_pb2, inference_pb2, inference_pb2_grpc
from relais_client import connect
from relais_typed.relais.v1 import GenerateRequest

from tests.inference.conftest import USER_METADATA, wide_tokens
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import default_tokens

Stub = inference_pb2_grpc.InferenceServiceStub


def request(prompt: str = "Bonjour", model: str = "fast", max_tokens: int = 12) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(prompt=prompt, model=model, max_tokens=max_tokens)


def test_a_stream_is_status_then_tokens_then_final(inference: Stub, triton: LiveTriton) -> None:
    events = list(inference.GenerateStream(request(max_tokens=12), metadata=USER_METADATA))

    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "status" and kinds[-1] == "final" and set(kinds[1:-1]) == {"token"}
    assert events[0].status.model == "fast" and events[0].status.backend == "triton"
    text = "".join(event.token.text for event in events if event.HasField("token"))
    assert text == "".join(default_tokens("Bonjour", 12)) == events[-1].final.text
    assert [event.seq for event in events] == list(range(len(events)))
    assert len({event.req_id for event in events}) == 1 and events[0].req_id
    assert events[-1].usage.completion_tokens == 12
    assert events[-1].final.finish_reason == events_pb2.FINISH_REASON_LENGTH
    # The stand-in saw the vLLM tensor convention, with Relais' request id.
    sent = triton.standin.requests[-1] if triton.standin else None
    assert sent is not None and sent.id == events[0].req_id
    assert {tensor.name for tensor in sent.inputs} >= {"text_input", "stream", "sampling_parameters"}


def test_generate_returns_the_whole_text(inference: Stub) -> None:
    response = inference.Generate(request(prompt="Salut", max_tokens=5), metadata=USER_METADATA)
    assert response.text == "".join(default_tokens("Salut", 5))
    assert (response.model, response.backend) == ("fast", "triton")
    assert response.usage.completion_tokens == 5


def test_the_tensorrt_llm_convention(inference: Stub, triton: LiveTriton) -> None:
    response = inference.Generate(request(model="trt", max_tokens=4), metadata=USER_METADATA)
    assert response.text == "".join(default_tokens("Bonjour", 4))
    assert triton.standin is not None
    assert {tensor.name for tensor in triton.standin.requests[-1].inputs} >= {"text_input", "max_tokens", "stream"}


def test_the_typed_client_streams(llm_stack: LiveStack) -> None:
    with connect(llm_stack.grpc_target, token="user-token") as relais:
        events = list(relais.inference.generate_stream(GenerateRequest(prompt="typed", model="fast", max_tokens=3)))
        assert events[-1].final.text == "".join(default_tokens("typed", 3))
        models = relais.models.list_models()
        assert [model.key for model in models.models][:2] == ["auto", "fast"]


def test_no_credentials_is_unauthenticated(inference: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(inference.GenerateStream(request()))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_an_unknown_model_is_invalid_and_lists_the_valid_keys(inference: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(inference.GenerateStream(request(model="gpt-9"), metadata=USER_METADATA))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "gpt-9" in caught.value.details() and "auto, fast, slow" in caught.value.details()


def test_a_model_failure_mid_stream_is_an_error_event_then_unavailable(inference: Stub) -> None:
    events = []
    with pytest.raises(grpc.RpcError) as caught:
        for event in inference.GenerateStream(request(model="broken"), metadata=USER_METADATA):
            events.append(event)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "CUDA out of memory" in caught.value.details()
    assert [event.WhichOneof("event") for event in events][-1] == "error"
    assert sum(1 for event in events if event.HasField("token")) >= 1
    assert events[-1].error.code == "UNAVAILABLE"


def test_a_model_triton_does_not_serve_is_unavailable(inference: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        inference.Generate(request(model="missing"), metadata=USER_METADATA)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "does not serve model 'not-deployed'" in caught.value.details()


def test_a_down_backend_is_unavailable_and_recovers(inference: Stub, late_triton: LiveTriton) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        inference.Generate(request(model="late"), metadata=USER_METADATA)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unavailable" in caught.value.details()

    late_triton.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # the channel reconnects with backoff
            try:
                response = inference.Generate(request(model="late", max_tokens=2), metadata=USER_METADATA)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.text == "".join(default_tokens("Bonjour", 2))
    finally:
        late_triton.stop()


def test_cancelling_the_call_cancels_the_generation(inference: Stub, triton: LiveTriton) -> None:
    # "held" streams 3 tokens, then waits for as long as its stream lives: only the cancel
    # reaching Triton ends the request (wait_idle would time out otherwise), however loaded the machine.
    assert triton.standin is not None
    cancelled_before, sent_before = triton.standin.cancelled, triton.standin.tokens_sent
    call = inference.GenerateStream(request(model="held", max_tokens=500), metadata=USER_METADATA)
    seen = 0
    for event in call:
        # Tokens, not messages: those arriving within the stream interval share one.
        seen += event.token.token_count if event.HasField("token") else 0
        if seen == 3:
            call.cancel()
            break
    triton.wait_idle()
    assert triton.standin.cancelled == cancelled_before + 1
    assert triton.standin.tokens_sent - sent_before == 3


def test_a_slow_reader_loses_nothing(llm_stack: LiveStack, inference: Stub) -> None:
    # Whether deltas get merged depends on how much gRPC buffers on the way (test_service.py checks the
    # merging itself); end to end, nothing may be lost or repeated.
    total = 2000  # 2 MiB of text
    call = inference.GenerateStream(request(model="wide", max_tokens=total), metadata=USER_METADATA)
    events = []
    for event in call:
        events.append(event)
        if len(events) == 2:
            time.sleep(1.0)  # a reader that stalls while the model races ahead
    deltas = [event.token for event in events if event.HasField("token")]
    assert "".join(delta.text for delta in deltas) == "".join(wide_tokens("Bonjour", total))
    assert sum(delta.token_count for delta in deltas) == total
