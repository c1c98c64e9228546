"""The AI Orchestrator's surface over the same conversations: /api/chat (JSON or SSE),
/api/conversations, /api/stats."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import connect_sse
from relais_client import connect as connect_typed
from relais_typed.relais.v1 import ConverseRequest, ListConversationsRequest, StreamMessageRequest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.chats.test_chats import REPLY, chat, send
from tests.identity.helpers import PASSWORD, new_account
from tests.support.live import LiveStack


def test_the_seed_httpx_example_runs_unchanged(chat_stack: LiveStack, http: httpx.Client) -> None:
    account = new_account(http)
    # seeds/001 "Python", with this server's address and an account of its own.
    client = httpx.Client(base_url=chat_stack.base_url)
    response = client.post("/api/auth/login", json={"username": account.email, "password": PASSWORD})
    token = response.json()["access_token"]
    response = client.post(
        "/api/chat", headers={"Authorization": f"Bearer {token}"}, json={"message": "Status du serveur?"}
    )
    body = response.json()
    client.close()

    assert response.status_code == 200, body
    assert body["response"] == REPLY and body["model_used"] == "fast" and body["tools_used"] == []
    assert body["tokens"]["completion"] == 16 and isinstance(body["conversation_id"], int)


def test_a_conversation_continues_and_is_the_same_resource_as_a_chat(http: httpx.Client) -> None:
    owner = new_account(http)
    first = http.post(
        "/api/chat", json={"message": "Quel est le status Docker?", "model": "auto"}, headers=owner.bearer
    )
    conversation_id = first.json()["conversation_id"]
    again = http.post(
        "/api/chat", json={"message": "Et Redis ?", "conversation_id": conversation_id}, headers=owner.bearer
    )
    assert again.json()["conversation_id"] == conversation_id

    conversation = http.get(f"/api/conversations/{conversation_id}", headers=owner.bearer).json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant", "user", "assistant"]
    assert conversation["title"] == "Quel est le status Docker?"
    # FoyerGPT's view of the same conversation.
    assert http.get(f"/api/chats/{conversation_id}", headers=owner.bearer).json()["message_count"] == 4


def test_stream_true_answers_with_server_sent_events(http: httpx.Client) -> None:
    owner = new_account(http)
    with connect_sse(
        http, "POST", "/api/chat", json={"message": "Bonjour", "stream": True}, headers=owner.bearer
    ) as source:
        events = list(source.iter_sse())
    assert events[-1].data == "[DONE]"
    kinds = [event.event for event in events[:-1]]
    assert set(kinds[:-1]) == {"token"} and kinds[-1] == "result"
    result = orjson.loads(events[-2].data)["result"]
    assert result["response"] == REPLY
    assert "".join(orjson.loads(e.data)["token"]["text"] for e in events[:-2]) == REPLY


def test_bad_requests_store_nothing(http: httpx.Client) -> None:
    owner = new_account(http)
    unknown = http.post("/api/chat", json={"message": "x", "model": "gpt-9"}, headers=owner.bearer)
    assert unknown.status_code == 400 and "valid models: auto, fast" in unknown.json()["detail"]
    missing = http.post("/api/chat", json={"message": "x", "conversation_id": 987654321}, headers=owner.bearer)
    assert missing.status_code == 404
    # The document's placeholder is no conversation id: refused, naming the field.
    named = http.post("/api/chat", json={"message": "x", "conversation_id": "conv-123"}, headers=owner.bearer)
    assert named.status_code == 422 and named.json()["error"]["details"][0]["field"] == "conversation_id"
    empty = http.post("/api/chat", json={"message": " "}, headers=owner.bearer)
    assert empty.status_code == 422
    assert http.get("/api/conversations", headers=owner.bearer).json()["total"] == 0


def test_search_finds_titles_and_message_text_of_ones_own_conversations(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    titled = chat(http, owner, title="Kubernetes upgrade")
    by_text = chat(http, owner, title="misc")
    send(http, owner, by_text["id"], "how do I drain a kubernetes node?")
    chat(http, owner, title="unrelated")
    chat(http, other, title="kubernetes too")  # someone else's

    found = http.get("/api/conversations", params={"search": "KUBERNETES"}, headers=owner.bearer).json()
    assert {c["id"] for c in found["conversations"]} == {titled["id"], by_text["id"]} and found["total"] == 2
    literal = http.get("/api/conversations", params={"search": "100%_"}, headers=owner.bearer).json()
    assert literal["total"] == 0  # % and _ are text, not wildcards


def test_delete_a_conversation(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    created = chat(http, owner)
    assert http.delete(f"/api/conversations/{created['id']}", headers=other.bearer).status_code == 404
    assert http.delete(f"/api/conversations/{created['id']}", headers=owner.bearer).status_code == 200
    assert http.get(f"/api/conversations/{created['id']}", headers=owner.bearer).status_code == 404


def test_stats_count_the_callers_activity(http: httpx.Client) -> None:
    owner = new_account(http)
    http.post("/api/agents", json={"name": "a", "system_prompt": "p"}, headers=owner.bearer)
    http.post("/api/chat", json={"message": "one"}, headers=owner.bearer)
    http.post("/api/chat", json={"message": "two"}, headers=owner.bearer)

    stats = http.get("/api/stats", headers=owner.bearer).json()
    assert {key: stats[key] for key in ("conversations", "messages", "user_messages", "assistant_messages")} == {
        "conversations": 2,
        "messages": 4,
        "user_messages": 2,
        "assistant_messages": 2,
    }
    assert stats["completion_tokens"] == 32 and stats["agents"] == 1 and stats["models"] == 5
    assert stats["uptime_seconds"] >= 0
    assert http.get("/api/stats").status_code == 401


def ws_messages(socket: ClientConnection) -> list[dict[str, Any]]:
    """Messages up to the end of one answer (done, or an error), pings left out."""
    received = []
    while True:
        message = orjson.loads(socket.recv(timeout=10))
        if message["type"] == "ping":
            continue
        received.append(message)
        if message["type"] == "error" or message.get("done"):
            return received


def test_the_orchestrator_websocket_streams_responses(chat_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    token = owner.tokens["access_token"]
    with connect(f"ws://127.0.0.1:{chat_stack.http_port}/ws/chat?token={token}") as socket:
        socket.send(orjson.dumps({"message": "Liste les conteneurs Docker", "model": "fast"}).decode())
        answer = ws_messages(socket)
        # Issue 13: the answer comes once, as `response`; the deltas before it are `token` events.
        assert [m["type"] for m in answer if m["type"] != "token"] == ["response"] and answer[-1]["done"] is True
        assert {m["type"] for m in answer[:-1]} == {"token"}
        assert "".join(m["content"] for m in answer[:-1]) == REPLY == answer[-1]["content"]
        conversation_id = answer[-1]["conversation_id"]

        socket.send(orjson.dumps({"message": "Et les volumes ?", "conversation_id": conversation_id}).decode())
        assert ws_messages(socket)[-1]["conversation_id"] == conversation_id


def test_the_orchestrator_websocket_reports_errors_and_pings(chat_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    with connect(f"ws://127.0.0.1:{chat_stack.http_port}/ws/chat?token={owner.tokens['access_token']}") as socket:
        socket.send("{oops")
        error = ws_messages(socket)[-1]
        assert (error["type"], error["code"]) == ("error", "BAD_REQUEST")
        socket.send(orjson.dumps({"message": "x", "model": "gpt-9"}).decode())
        error = ws_messages(socket)[-1]
        assert (error["code"], error["status"]) == ("UNKNOWN_MODEL", 400)
        assert "valid models" in error["content"]
        # Keep-alives come on their own.
        assert orjson.loads(socket.recv(timeout=5))["type"] == "ping"

    with pytest.raises(InvalidStatus) as caught, connect(f"ws://127.0.0.1:{chat_stack.http_port}/ws/chat"):
        pass
    assert caught.value.response.status_code == 401


def test_the_typed_client_streams_conversations_and_replies(chat_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    with connect_typed(chat_stack.grpc_target, token=owner.tokens["access_token"]) as relais:
        events = list(relais.conversations.converse(ConverseRequest(message="Bonjour")))
        assert events[-1].final.text == REPLY
        conversation = events[-1].final.chat_id

        replies = list(relais.messages.stream_message(StreamMessageRequest(chat_id=conversation, message="Encore")))
        assert replies[0].status.user_message_id and replies[0].status.chat_id == conversation
        assert "".join(event.token.text for event in replies[1:-1]) == REPLY
        assert replies[-1].final.text == REPLY and replies[-1].final.message_id == replies[1].token.message_id

        listed = relais.conversations.list_conversations(ListConversationsRequest(search="Bonjour"))
        assert [c.id for c in listed.conversations] == [conversation]


def test_chat_answers_and_streams_carry_the_rate_limit_headers(http: httpx.Client) -> None:
    owner = new_account(http)
    whole = http.post("/api/chat", json={"message": "Status du serveur?"}, headers=owner.bearer)
    with connect_sse(
        http, "POST", "/api/chat", json={"message": "Bonjour", "stream": True}, headers=owner.bearer
    ) as source:
        streamed = source.response.headers
        list(source.iter_sse())

    assert whole.status_code == 200
    for headers in (whole.headers, streamed):
        assert int(headers["x-ratelimit-limit"]) > 0, headers
        assert int(headers["x-ratelimit-remaining"]) >= 0
        assert int(headers["x-ratelimit-reset"]) > 1_700_000_000
    assert int(streamed["x-ratelimit-remaining"]) < int(whole.headers["x-ratelimit-remaining"])
