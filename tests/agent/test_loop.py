"""The agent loop with a scripted OpenAI-compatible model (native tool calling): think, action,
result, plan and response on each transport, permissions, invalid calls, history, cancellation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from relais.v1 import chat_pb2, chat_pb2_grpc

from tests.agent.scripted_llm import ScriptedLlm
from tests.agent.support import grpc_events, sse_events, ws_events
from tests.identity.helpers import Account
from tests.support.live import LiveStack
from tests.tools.support import tool_names, wait_for


def script(*calls: tuple[str, dict[str, Any]]) -> str:
    return "CALL " + json.dumps([{"name": name, "arguments": arguments} for name, arguments in calls])


def test_a_plain_reply_offers_no_tools(http: httpx.Client, user: Account, scripted: ScriptedLlm) -> None:
    body = http.post("/api/chat", json={"message": "Salut", "model": "scripted"}, headers=user.bearer).json()
    assert body["response"] == "Hello!" and body["tools_used"] == []
    assert "tools" not in scripted.requests[-1]


def test_sse_streams_think_action_result_response(http: httpx.Client, user: Account, scripted: ScriptedLlm) -> None:
    message = script(("calculator", {"expression": "2 * 21"}))
    events = sse_events(http, user, message=message, model="scripted", tool_choice="auto")
    kinds = [kind for kind, _ in events]
    assert kinds[:3] == ["think", "action", "tool_result"], kinds
    assert events[0][1]["content"] == "I should use a tool."
    assert events[1][1] == {"seq": events[1][1]["seq"], "tool": "calculator", "params": {"expression": "2 * 21"}}
    assert events[2][1]["content"] == "2 * 21 = 42" and events[2][1]["is_error"] is False
    result = events[-1][1]["result"]
    assert result["response"] == "Result: 2 * 21 = 42" and result["tools_used"] == ["calculator"]
    assert result["tokens"]["completion"] > 0
    # The model was offered every tool the caller may use, natively, then read the result.
    first, second = scripted.requests[-2:]
    assert first["tool_choice"] == "auto"
    assert {tool["function"]["name"] for tool in first["tools"]} == set(tool_names(http, user))
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "calculator"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "2 * 21 = 42"}


def test_websocket_streams_the_documented_event_types(
    agent_stack: LiveStack, user: Account, http: httpx.Client
) -> None:
    wait_for(lambda: "add" in tool_names(http, user), what="ext tools")
    message = script(("calculator", {"expression": "6 * 7"}), ("add", {"a": 1, "b": 2}))
    frames = ws_events(agent_stack.http_port, user, message=message, model="scripted", tools=["calculator", "add"])
    kinds = [frame["type"] for frame in frames if frame["type"] != "token"]
    assert kinds == ["think", "plan", "action", "result", "action", "result", "response"], kinds
    plan = frames[1]
    assert plan["steps"] == ['calculator {"expression": "6 * 7"}', 'add {"a": 1, "b": 2}']
    actions = [frame for frame in frames if frame["type"] == "action"]
    assert [(a["tool"], a["params"]) for a in actions] == [
        ("calculator", {"expression": "6 * 7"}),
        ("add", {"a": 1, "b": 2}),
    ]
    results = [frame["content"] for frame in frames if frame["type"] == "result"]
    assert results == ["6 * 7 = 42", "3"]
    assert frames[-1]["tools_used"] == ["calculator", "add"] and frames[-1]["done"] is True


def test_grpc_streams_tool_calls_and_results(agent_stack: LiveStack, user: Account) -> None:
    message = script(("convert_units", {"value": 1, "from_unit": "km", "to_unit": "m"}))
    events = grpc_events(agent_stack.grpc_target, user, message=message, model="scripted", tool_choice="required")
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "status" and "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "final"
    call = next(event.tool_call for event in events if event.WhichOneof("event") == "tool_call")
    assert call.tool == "convert_units" and dict(call.params)["to_unit"] == "m"
    assert list(events[-1].final.tools_used) == ["convert_units"]
    assert events[-1].usage.completion_tokens > 0


def test_invalid_arguments_come_back_as_a_failed_result(http: httpx.Client, user: Account) -> None:
    events = sse_events(
        http, user, message=script(("calculator", {"formula": "1"})), model="scripted", tool_choice="auto"
    )
    result = next(data for kind, data in events if kind == "tool_result")
    assert result["is_error"] is True and "Invalid arguments" in result["content"]
    assert events[-1][1]["result"]["tools_used"] == []


def test_tools_a_caller_may_not_use_are_refused_before_anything_is_stored(http: httpx.Client, user: Account) -> None:
    before = http.get("/api/conversations", headers=user.bearer).json()["total"]
    denied = http.post("/api/chat", json={"message": "x", "tools": ["execute_command"]}, headers=user.bearer)
    assert denied.status_code == 404
    unknown = http.post("/api/chat", json={"message": "x", "tool_choice": "teleport"}, headers=user.bearer)
    assert unknown.status_code == 404
    wrong = http.post(
        "/api/chat", json={"message": "x", "tools": ["calculator"], "tool_choice": "add"}, headers=user.bearer
    )
    assert wrong.status_code == 422
    assert http.get("/api/conversations", headers=user.bearer).json()["total"] == before


def test_history_keeps_and_replays_tool_calls(http: httpx.Client, user: Account, scripted: ScriptedLlm) -> None:
    body = http.post(
        "/api/chat",
        json={"message": script(("calculator", {"expression": "5 + 5"})), "model": "scripted", "tool_choice": "auto"},
        headers=user.bearer,
    ).json()
    conversation = http.get(f"/api/conversations/{body['conversation_id']}", headers=user.bearer).json()
    reply = conversation["messages"][-1]
    assert reply["tools_used"] == ["calculator"]
    step = reply["tool_steps"][0]
    assert step["call"]["tool"] == "calculator" and step["call"]["params"] == {"expression": "5 + 5"}
    assert step["result"]["content"] == "5 + 5 = 10" and step["result"]["is_error"] is False
    # The next reply's model reads the call and its result in the history.
    http.post(
        "/api/chat",
        json={"message": "Thanks", "model": "scripted", "conversation_id": body["conversation_id"]},
        headers=user.bearer,
    )
    roles = [message["role"] for message in scripted.requests[-1]["messages"]]
    assert roles[-5:] == ["user", "assistant", "tool", "assistant", "user"]
    assert scripted.requests[-1]["messages"][-3]["content"] == "5 + 5 = 10"


def test_a_client_that_leaves_cancels_the_running_tool(agent_stack: LiveStack, user: Account, markers: Path) -> None:
    with grpc.insecure_channel(agent_stack.grpc_target) as channel:
        stub = chat_pb2_grpc.ConversationServiceStub(channel)
        request = chat_pb2.ConverseRequest(
            message=script(("slow", {"seconds": 20, "tag": "agent"})), model="scripted", tool_choice="auto"
        )
        call = stub.Converse(request, metadata=[("authorization", f"Bearer {user.tokens['access_token']}")])
        for event in call:
            if event.WhichOneof("event") == "tool_call":
                time.sleep(0.5)
                call.cancel()
                break
    wait_for(lambda: (markers / "cancelled-agent").exists(), timeout=10, what="the tool's cancellation")


@pytest.mark.parametrize("field", ["tools", "tool_choice"])
def test_foyergpt_replies_use_the_same_loop(http: httpx.Client, user: Account, field: str) -> None:
    agent = http.post(
        "/api/agents", json={"name": "Calc", "model": "scripted", "system_prompt": "You compute."}, headers=user.bearer
    )
    assert agent.status_code == 201, agent.text
    chat = http.post("/api/chats", json={"agent_id": agent.json()["id"]}, headers=user.bearer).json()
    value: Any = ["calculator"] if field == "tools" else "calculator"
    sent = http.post(
        "/api/messages",
        json={"chat_id": chat["id"], "content": script(("calculator", {"expression": "3 * 3"})), field: value},
        headers=user.bearer,
    )
    assert sent.status_code == 200, sent.text
    reply = sent.json()["assistant_message"]
    assert reply["content"] == "Result: 3 * 3 = 9" and reply["tools_used"] == ["calculator"]
    assert reply["tool_steps"][0]["result"]["content"] == "3 * 3 = 9"


def test_reasoning_in_think_tags_is_a_think_event(http: httpx.Client, user: Account) -> None:
    events = sse_events(http, user, message="THINK", model="scripted")
    thoughts = "".join(data["content"] for kind, data in events if kind == "think")
    assert thoughts == "Let me think."
    assert events[-1][1]["result"]["response"] == "Forty-two."
