"""The generation routes over HTTP: /llm/infer, /llm/stream as SSE, /api/models, metrics."""

from __future__ import annotations

import httpx
import orjson
from httpx_sse import connect_sse

from tests.inference.conftest import USER
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import default_tokens


def test_infer_returns_the_text(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "Bonjour", "max_tokens": 6}, headers=USER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "".join(default_tokens("Bonjour", 6))
    assert body["model"] == "fast" and body["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 6}


def test_infer_takes_chat_turns(http: httpx.Client, triton: LiveTriton) -> None:
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    response = http.post("/llm/infer", json={"messages": turns, "max_tokens": 2}, headers=USER)
    assert response.status_code == 200, response.text
    assert triton.standin is not None
    prompt = triton.standin.requests[-1]
    # The completion template: system prompt, then the transcript, ending on the assistant's cue.
    raw = b"".join(prompt.raw_input_contents[:1])
    assert b"Be brief.\n\nUser: Hi\nAssistant:" in raw


def test_infer_needs_credentials(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "Bonjour"})
    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_ERROR"


def test_an_empty_prompt_is_a_422(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "  ", "temperature": 1}, headers=USER)
    # Bounds the contract declares are checked before the request reaches the service.
    hot = http.post("/llm/infer", json={"prompt": "Bonjour", "temperature": 7}, headers=USER)
    assert response.status_code == 422 and hot.status_code == 422
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["prompt"]
    assert hot.json()["error"]["details"] == [{"field": "temperature", "message": "must be at most 2"}]


def test_an_unknown_model_is_a_400_listing_the_keys(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "x", "model": "gpt-9"}, headers=USER)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "UNKNOWN_MODEL"
    assert "valid models: auto, fast, slow, held, broken, trt, wide, missing, late, gemma3-270m" in body["detail"]


def test_a_down_backend_is_a_503_with_a_clear_message(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "x", "model": "late"}, headers=USER)
    assert response.status_code == 503
    assert response.json()["code"] == "BACKEND_UNAVAILABLE"
    assert "Triton at 127.0.0.1:" in response.json()["detail"]


def test_sse_streams_events_then_done(http: httpx.Client) -> None:
    body = {"prompt": "Bonjour", "max_tokens": 5}
    with connect_sse(http, "POST", "/llm/stream", json=body, headers=dict(USER)) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = list(source.iter_sse())
    assert events[-1].data == "[DONE]"
    kinds = [event.event for event in events[:-1]]
    assert kinds[0] == "status" and kinds[-1] == "final" and set(kinds[1:-1]) == {"token"}
    payloads = [orjson.loads(event.data) for event in events[:-1]]
    assert "".join(p["token"]["text"] for p in payloads if p.get("token")) == "".join(default_tokens("Bonjour", 5))
    assert [event.id for event in events[:-1]] == [str(n) for n in range(len(payloads))]
    assert payloads[-1]["final"]["finish_reason"] == "length"


def test_sse_errors_before_the_first_event_keep_their_status(http: httpx.Client) -> None:
    response = http.post("/llm/stream", json={"prompt": "x", "model": "missing"}, headers=USER)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"


def test_sse_reports_a_mid_stream_failure_as_an_error_event(http: httpx.Client) -> None:
    body = {"prompt": "x", "model": "broken"}
    with connect_sse(http, "POST", "/llm/stream", json=body, headers=dict(USER)) as source:
        events = list(source.iter_sse())
    assert events[-1].event == "error"
    assert "CUDA out of memory" in orjson.loads(events[-1].data)["error"]["message"]
    assert all(event.data != "[DONE]" for event in events)


def test_an_sse_client_that_leaves_cancels_the_generation(llm_stack: object, triton: LiveTriton) -> None:
    assert triton.standin is not None
    before = triton.standin.cancelled
    base_url = llm_stack.base_url  # type: ignore[attr-defined]
    with (
        httpx.Client(base_url=base_url, timeout=30) as client,
        connect_sse(
            client, "POST", "/llm/stream", json={"prompt": "x", "model": "slow", "max_tokens": 500}, headers=dict(USER)
        ) as source,
    ):
        for index, _ in enumerate(source.iter_sse()):
            if index == 3:
                break
    triton.wait_idle()
    assert triton.standin.cancelled == before + 1


def test_models_are_public_with_the_router_first(http: httpx.Client) -> None:
    response = http.get("/api/models")
    assert response.status_code == 200
    models = response.json()["models"]
    assert models[0] == {
        "key": "auto",
        "name": "Sélection automatique",
        "type": "router",
        "size": None,
        "provider": None,
        "backend": "",
        "context_window": 0,
    }
    by_key = {model["key"]: model for model in models}
    assert by_key["fast"]["name"] == "Echo on Triton" and by_key["fast"]["type"] == "local"
    assert by_key["gemma3-270m"]["backend"] == "local" and by_key["gemma3-270m"]["provider"] == "Google"


def test_auto_routes_to_the_first_model_that_fits(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "x", "model": "auto", "max_tokens": 1}, headers=USER)
    assert response.json()["model"] == "fast"


def test_generation_metrics_are_exported(http: httpx.Client) -> None:
    http.post("/llm/infer", json={"prompt": "x", "max_tokens": 3}, headers=USER)
    metrics = http.get("/metrics").text
    for name in (
        'relais_llm_time_to_first_token_seconds_bucket{backend="triton",le="0.001",model="fast"}',
        'relais_llm_inter_token_latency_seconds_count{backend="triton",model="fast"}',
        'relais_llm_output_tokens_total{backend="triton",model="fast"}',
        'relais_llm_active_streams{backend="triton",model="fast"}',
        'relais_llm_requests_total{backend="triton",model="fast",outcome="complete"}',
    ):
        assert name in metrics, name


def test_health_measures_the_inference_backends(http: httpx.Client) -> None:
    body = http.get("/health").json()
    # "late" is down and Triton does not serve "missing": measured, not assumed.
    assert body["ollama"] == "disconnected"
    assert body["status"] == "degraded"
