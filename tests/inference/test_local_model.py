"""The embedded default backend with the real model: llama.cpp running Gemma 3 270M on the CPU."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest
from relais.v1 import inference_pb2, inference_pb2_grpc

from server.inference.local import LocalBackend
from tests.inference.conftest import USER, USER_METADATA
from tests.support.live import LiveStack

pytestmark = pytest.mark.slow


def local_backend(stack: LiveStack) -> LocalBackend:
    assert stack.server.inference is not None
    backend = next(m.backend for m in stack.server.inference.catalogue.models if m.key == "gemma3-270m")
    assert isinstance(backend, LocalBackend)
    return backend


def test_the_local_model_streams_real_tokens(inference: inference_pb2_grpc.InferenceServiceStub) -> None:
    request = inference_pb2.GenerateRequest(
        prompt="User: What is the capital of France?\nAssistant:", model="gemma3-270m", max_tokens=12, temperature=0
    )
    events = list(inference.GenerateStream(request, metadata=USER_METADATA, timeout=120))

    tokens = [event.token for event in events if event.HasField("token")]
    assert tokens and all(delta.text for delta in tokens)
    final = events[-1]
    assert final.HasField("final") and final.final.text == "".join(delta.text for delta in tokens)
    assert "Paris" in final.final.text
    assert final.usage.prompt_tokens > 3 and 1 <= final.usage.completion_tokens <= 12
    assert events[0].status.backend == "local"


def test_infer_with_chat_turns_uses_the_completion_template(http: httpx.Client) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "What colour is the sky on a clear day?"},
        ],
        "model": "gemma3-270m",
        "max_tokens": 16,
        "temperature": 0,
    }
    response = http.post("/llm/infer", json=body, headers=USER, timeout=120)
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert text.strip() and "User:" not in text  # stopped at the turn boundary


def test_cancelling_stops_the_local_model_within_a_token(
    llm_stack: LiveStack, inference: inference_pb2_grpc.InferenceServiceStub
) -> None:
    backend = local_backend(llm_stack)
    before = backend.generated_tokens
    request = inference_pb2.GenerateRequest(prompt="Once upon a time", model="gemma3-270m", max_tokens=400)
    call = inference.GenerateStream(request, metadata=USER_METADATA, timeout=120)
    received = 0
    for event in call:
        received += event.token.token_count if event.HasField("token") else 0
        if received >= 3:
            call.cancel()
            break
    deadline = time.monotonic() + 30
    while backend.busy_slots and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backend.busy_slots == 0
    # Only what was already generated while the cancel travelled: a token or two, not 400.
    assert backend.generated_tokens - before <= received + 2


def test_a_prompt_longer_than_the_context_is_rejected(inference: inference_pb2_grpc.InferenceServiceStub) -> None:
    request = inference_pb2.GenerateRequest(prompt="word " * 3000, model="gemma3-270m", max_tokens=8)
    with pytest.raises(grpc.RpcError) as caught:
        inference.Generate(request, metadata=USER_METADATA, timeout=120)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context window" in caught.value.details()
