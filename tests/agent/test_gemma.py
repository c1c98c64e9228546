"""Acceptance with the real packaged Gemma 3 270M under llama.cpp: with tool_choice "calculator",
"12345 * 6789" gives an action naming the calculator (its call constrained by the JSON-Schema
grammar), a result containing 83810205, a response, and tools_used ["calculator"], over
/api/chat (JSON and SSE), /ws/chat and gRPC."""

from __future__ import annotations

import httpx
import pytest

from tests.agent.support import grpc_events, sse_events, ws_events
from tests.identity.helpers import Account
from tests.support.live import LiveStack

pytestmark = pytest.mark.slow
REQUEST = {"message": "12345 * 6789", "tool_choice": "calculator"}


def test_api_chat_json(http: httpx.Client, user: Account) -> None:
    body = http.post("/api/chat", json=REQUEST, headers=user.bearer).json()
    assert body["tools_used"] == ["calculator"] and body["model_used"] == "gemma3-270m"
    assert isinstance(body["response"], str) and body["tokens"]["prompt"] > 0
    reply = http.get(f"/api/conversations/{body['conversation_id']}", headers=user.bearer).json()["messages"][-1]
    assert "83810205" in reply["tool_steps"][0]["result"]["content"]


def test_api_chat_sse(http: httpx.Client, user: Account) -> None:
    events = sse_events(http, user, **REQUEST)
    action = next(data for kind, data in events if kind == "action")
    assert action["tool"] == "calculator"
    result = next(data for kind, data in events if kind == "tool_result")
    assert "83810205" in result["content"] and result["is_error"] is False
    assert events[-1][0] == "result" and events[-1][1]["result"]["tools_used"] == ["calculator"]


def test_ws_chat(agent_stack: LiveStack, user: Account) -> None:
    frames = ws_events(agent_stack.http_port, user, **REQUEST)
    action = next(frame for frame in frames if frame["type"] == "action")
    assert action["tool"] == "calculator" and "expression" in action["params"]
    assert "83810205" in next(frame for frame in frames if frame["type"] == "result")["content"]
    assert frames[-1]["type"] == "response" and frames[-1]["tools_used"] == ["calculator"]


def test_grpc(agent_stack: LiveStack, user: Account) -> None:
    events = grpc_events(agent_stack.grpc_target, user, **REQUEST)
    kinds = [event.WhichOneof("event") for event in events]
    assert events[0].status.model == "gemma3-270m"
    assert next(event.tool_call for event in events if event.WhichOneof("event") == "tool_call").tool == "calculator"
    assert "83810205" in next(e.tool_result for e in events if e.WhichOneof("event") == "tool_result").content
    assert kinds[-1] == "final" and list(events[-1].final.tools_used) == ["calculator"]


def test_a_short_question_gets_a_short_answer(http: httpx.Client, user: Account) -> None:
    """Issue 13: generation stops at every turn marker, so the reply never writes further turns."""
    body = http.post("/api/chat", json={"message": "What is the capital of France?"}, headers=user.bearer).json()
    reply = body["response"]
    for marker in ("\\nUser:", "\\nAssistant:", "\\nSystem:", "\\nTool ("):
        assert marker not in reply
    assert body["tokens"]["completion"] < 256, reply
