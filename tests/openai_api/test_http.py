"""OpenAI's routes over plain HTTP, on the Triton stand-in: the objects and chunks as OpenAI's API
writes them, errors in its shape, credentials, tools, stored conversations, usage counts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.identity.helpers import Account, new_account
from tests.openai_api.conftest import api_key

FIVE_TOKENS = "tok0 é tok2 tok3 tok4 "


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def chat(http: httpx.Client, key: str, **body: Any) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    return http.post("/v1/chat/completions", headers=bearer(key), json={"model": "fast", **body})


def events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event ("[DONE]" as it is)."""
    assert response.headers["content-type"].startswith("text/event-stream"), response.text
    found = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            found.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    return found


def test_the_models_list_every_model_key_the_embedding_model_and_the_callers_agents(
    http: httpx.Client, user: Account, key: str
) -> None:
    agent = http.post("/api/agents", headers=user.bearer, json={"name": "Mine", "system_prompt": "Be brief."})
    assert agent.status_code in (200, 201), agent.text

    listing = http.get("/v1/models", headers=bearer(key))

    assert listing.status_code == 200, listing.text
    body = listing.json()
    ids = [model["id"] for model in body["data"]]
    assert body["object"] == "list"
    assert {"auto", "fast", "gemma3-270m", "all-MiniLM-L6-v2", f"agent:{agent.json()['id']}"} <= set(ids)
    fast = next(model for model in body["data"] if model["id"] == "fast")
    assert fast["object"] == "model" and fast["owned_by"] == "Stand-in" and fast["created"] > 1_700_000_000
    one = http.get("/v1/models/gemma3-270m", headers=bearer(key))
    assert one.json() == {**next(m for m in body["data"] if m["id"] == "gemma3-270m")}


def test_an_unknown_model_is_openais_404_model_not_found(http: httpx.Client, key: str) -> None:
    for response in (http.get("/v1/models/gpt-4o", headers=bearer(key)), chat(http, key, model="gpt-4o")):
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
        assert "gpt-4o" in error["message"] and set(response.json()) == {"error"}


def test_another_users_private_agent_is_not_a_model_for_the_caller(http: httpx.Client, user: Account) -> None:
    agent = http.post("/api/agents", headers=user.bearer, json={"name": "Private", "system_prompt": "x"}).json()
    other = api_key(http, new_account(http))

    assert chat(http, other, model=f"agent:{agent['id']}").json()["error"]["code"] == "model_not_found"
    assert http.get(f"/v1/models/agent:{agent['id']}", headers=bearer(other)).status_code == 404
    assert f"agent:{agent['id']}" not in {m["id"] for m in http.get("/v1/models", headers=bearer(other)).json()["data"]}


def test_a_chat_completion_is_one_object_as_openai_writes_it(http: httpx.Client, key: str) -> None:
    response = chat(http, key, max_tokens=5)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion" and body["model"] == "fast"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": FIVE_TOKENS, "refusal": None},
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5
    assert "conversation_id" not in body
    assert int(response.headers["x-ratelimit-limit-requests"]) > 0
    assert int(response.headers["x-ratelimit-remaining-requests"]) >= 0
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_a_streamed_chat_completion_is_chunks_then_the_usage_then_done(http: httpx.Client, key: str) -> None:
    response = chat(http, key, max_tokens=5, stream=True, stream_options={"include_usage": True})

    frames = events(response)
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1 and len({chunk["created"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks if chunk["choices"])
    assert text == FIVE_TOKENS
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert all(chunk["usage"] is None for chunk in chunks[:-1])


def test_without_include_usage_no_chunk_carries_usage(http: httpx.Client, key: str) -> None:
    chunks = events(chat(http, key, max_tokens=3, stream=True))[:-1]

    assert all("usage" not in chunk for chunk in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0]",
        ),
        ({"temperature": 3}, "temperature"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}},
            "response_format.json_schema.schema",
        ),
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ],
)
def test_a_bad_request_is_openais_400_naming_the_parameter(
    http: httpx.Client, key: str, body: dict[str, Any], param: str
) -> None:
    response = chat(http, key, **body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert error["message"]


def test_credentials_are_a_bearer_api_key_or_token_and_a_missing_one_is_openais_401(
    http: httpx.Client, user: Account, key: str
) -> None:
    anonymous = chat(http, "")
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "error": {
            "message": "Authentication required",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert chat(http, "rls_not-a-key").status_code == 401
    assert chat(http, user.tokens["access_token"], max_tokens=2).status_code == 200
    assert chat(http, key, max_tokens=2).status_code == 200
    spare = http.post("/api/keys", headers=user.bearer, json={"name": "spare"}).json()
    assert chat(http, spare["key"], max_tokens=2).status_code == 200
    assert http.delete(f"/api/keys/{spare['api_key']['id']}", headers=user.bearer).status_code == 204
    assert chat(http, spare["key"], max_tokens=2).status_code == 401


def test_client_tools_end_the_answer_with_their_calls_and_the_results_continue_it(http: httpx.Client, key: str) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    question = {"role": "user", "content": "Weather in Paris?"}

    first = chat(http, key, model="tooly", messages=[question], tools=[weather]).json()

    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    answered = [question, choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"}]
    second = chat(http, key, model="tooly", messages=answered, tools=[weather], tool_choice="none").json()
    assert second["choices"][0]["message"]["content"] == "The tool says: Sunny, 21 C"
    assert second["choices"][0]["finish_reason"] == "stop"


def test_streamed_client_tool_calls_arrive_in_a_chunk_before_the_finish(http: httpx.Client, key: str) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}

    chunks = events(chat(http, key, model="tooly", tools=[tool], stream=True))[:-1]

    calls = [
        chunk["choices"][0]["delta"]["tool_calls"] for chunk in chunks if "tool_calls" in chunk["choices"][0]["delta"]
    ]
    assert len(calls) == 1 and calls[0][0]["index"] == 0 and calls[0][0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_relais_tools_run_on_the_server_and_only_the_answer_comes_back(http: httpx.Client, key: str) -> None:
    response = chat(http, key, model="tooly", relais_tools=["calculator"])

    message = response.json()["choices"][0]["message"]
    assert "tool_calls" not in message and "42" in message["content"], message
    assert chat(http, key, model="tooly", relais_tools=["no_such_tool"]).status_code == 404


def test_response_format_is_refused_by_a_model_that_cannot_constrain_its_answer(http: httpx.Client, key: str) -> None:
    response = chat(http, key, model="trt", response_format={"type": "json_object"})

    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]


def test_a_failure_mid_stream_is_an_error_event_in_openais_shape(http: httpx.Client, key: str) -> None:
    frames = events(chat(http, key, model="broken", max_tokens=10, stream=True))

    errors = [frame for frame in frames if isinstance(frame, dict) and "error" in frame]
    assert len(errors) == 1 and "CUDA out of memory" in errors[0]["error"]["message"]
    assert errors[0]["error"]["type"] == "server_error"


def test_nothing_is_kept_unless_the_request_names_a_conversation(http: httpx.Client, user: Account, key: str) -> None:
    before = http.get("/api/chats", headers=user.bearer).json()["total"]
    chat(http, key, max_tokens=2)
    assert http.get("/api/chats", headers=user.bearer).json()["total"] == before

    stored = chat(http, key, max_tokens=2, store=True, messages=[{"role": "user", "content": "Keep this"}]).json()
    conversation = stored["conversation_id"]
    follow = chat(http, key, max_tokens=3, metadata={"conversation_id": conversation}, stream=True)

    assert {chunk["conversation_id"] for chunk in events(follow)[:-1]} == {conversation}
    kept = http.get(f"/api/chats/{conversation}", headers=user.bearer).json()
    assert [(m["role"], m["content"]) for m in kept["messages"]] == [
        ("user", "Keep this"),
        ("assistant", "tok0 é "),
        ("user", "Hello"),
        ("assistant", "tok0 é tok2 "),
    ]
    other = api_key(http, new_account(http))
    refused = chat(http, other, metadata={"conversation_id": conversation})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"


def test_an_agent_answers_with_its_prompt_and_model(http: httpx.Client, user: Account, key: str) -> None:
    agent = http.post(
        "/api/agents",
        headers=user.bearer,
        json={"name": "Captain", "system_prompt": "You are Captain Relais.", "model": "parrot"},
    ).json()
    messages = [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Who are you?"}]

    body = chat(http, key, model=f"agent:{agent['id']}", messages=messages).json()

    prompt = body["choices"][0]["message"]["content"]
    assert body["model"] == "parrot"
    assert prompt.startswith("You are Captain Relais. |  | Answer in French.") and "| User: Who are you? |" in prompt


def test_every_role_reaches_the_model(http: httpx.Client, key: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": [{"type": "text", "text": "Weather"}, {"type": "text", "text": "in Oslo?"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Snow, -3 C"},
    ]

    prompt = chat(http, key, model="parrot", messages=messages).json()["choices"][0]["message"]["content"]

    assert prompt.startswith("Be kind.") and "| User: Weather | in Oslo? |" in prompt
    assert 'Assistant: (I used the tool get_weather with {"city": "Oslo"}.)' in prompt
    assert "Tool (get_weather): Snow, -3 C" in prompt


def test_relais_is_its_own_openai_backend_and_refuses_a_model_that_resolves_to_itself(
    http: httpx.Client, key: str
) -> None:
    through = chat(http, key, model="loopback", max_tokens=5).json()
    assert through["model"] == "loopback" and through["choices"][0]["message"]["content"] == FIVE_TOKENS
    legacy = http.post("/v1/completions", headers=bearer(key), json={"model": "loopback-text", "prompt": "Hi"}).json()
    assert legacy["choices"][0]["text"].startswith("tok0")

    for stream in (False, True):
        looped = chat(http, key, model="ouroboros", max_tokens=5, stream=stream)
        assert looped.status_code == 400, looped.text
        assert looped.json()["error"]["code"] == "loop_detected", looped.json()
        assert "resolves to itself" in looped.json()["error"]["message"]


def test_legacy_completions_whole_streamed_and_echoed(http: httpx.Client, key: str) -> None:
    request = {"model": "fast", "prompt": "Once", "max_tokens": 3}

    whole = http.post("/v1/completions", headers=bearer(key), json=request).json()
    streamed = events(http.post("/v1/completions", headers=bearer(key), json={**request, "stream": True}))
    echoed = http.post("/v1/completions", headers=bearer(key), json={**request, "echo": True}).json()

    assert whole["object"] == "text_completion" and whole["id"].startswith("cmpl-")
    assert whole["choices"] == [{"text": "tok0 é tok2 ", "index": 0, "logprobs": None, "finish_reason": "length"}]
    assert "".join(frame["choices"][0]["text"] for frame in streamed[:-1]) == "tok0 é tok2 "
    assert streamed[-1] == "[DONE]" and streamed[-2]["choices"][0]["finish_reason"] == "length"
    assert echoed["choices"][0]["text"] == "Oncetok0 é tok2 "
    default = http.post("/v1/completions", headers=bearer(key), json={"model": "fast", "prompt": "x"}).json()
    assert default["usage"]["completion_tokens"] == 16  # OpenAI's default max_tokens


def test_usage_is_counted_per_user_day_route_and_model(http: httpx.Client) -> None:
    person = new_account(http)
    key = api_key(http, person)
    chat(http, key, max_tokens=5)
    chat(http, key, max_tokens=3, stream=True)
    http.post("/v1/completions", headers=bearer(key), json={"model": "fast", "prompt": "x", "max_tokens": 2})

    usage = http.get("/v1/usage", headers=bearer(key)).json()

    assert usage["user_id"] == person.user_id
    rows = {(row["endpoint"], row["model"]): row for row in usage["data"]}
    assert rows[("chat.completions", "fast")]["requests"] == 2
    assert rows[("chat.completions", "fast")]["completion_tokens"] == 8
    assert rows[("chat.completions", "fast")]["prompt_tokens"] == 0  # Triton does not report them
    assert rows[("completions", "fast")]["completion_tokens"] == 2
    others = http.get("/v1/usage", headers=bearer(api_key(http, new_account(http))), params={"user_id": person.user_id})
    assert others.status_code == 403 and others.json()["error"]["type"] == "permission_error"


def test_a_request_that_went_through_too_many_relais_servers_is_refused(http: httpx.Client, key: str) -> None:
    hops = ", ".join(f"other{index}:fast" for index in range(8))

    response = http.post(
        "/v1/chat/completions",
        headers={**bearer(key), "X-Relais-Via": hops},
        json={"model": "fast", "messages": [{"role": "user", "content": "Hi"}]},
    )

    assert response.status_code == 400 and response.json()["error"]["code"] == "loop_detected"
