"""Issue 13: a stream waiting for its model (a busy queue) keeps its connection alive: SSE
comments, /llm/stream "waiting" statuses, /ws/chat pings, Socket.IO (engine.io) pings. The
chats' stack sends them after 0.2 s of quiet; its "queued" model waits a second per token."""

from __future__ import annotations

import time

import httpx
import orjson
from websockets.sync.client import connect

from tests.identity.helpers import new_account
from tests.support.live import LiveStack


def test_sse_sends_comments_while_the_model_keeps_it_waiting(http: httpx.Client) -> None:
    account = new_account(http)
    lines: list[str] = []
    body = {"prompt": "Bonjour", "model": "queued", "max_tokens": 2}
    with http.stream("POST", "/llm/stream", json=body, headers=account.bearer) as response:
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith("data:") and '"token"' in line:
                break

    before_first_token = lines[: next(i for i, line in enumerate(lines) if '"token"' in line)]
    assert response.status_code == 200
    assert before_first_token.count(": ping") >= 2, lines


def test_the_local_assistant_socket_says_it_is_waiting(chat_stack: LiveStack, http: httpx.Client) -> None:
    token = new_account(http).tokens["access_token"]
    with connect(f"ws://127.0.0.1:{chat_stack.http_port}/llm/stream?token={token}") as socket:
        request = {"type": "request", "req_id": "r1", "event": "start"}
        socket.send(
            orjson.dumps({**request, "payload": {"prompt": "Bonjour", "model": "queued", "max_tokens": 1}}).decode()
        )
        events: list[str] = []
        while not events or events[-1] not in ("token", "end", "error"):
            events.append(orjson.loads(socket.recv(timeout=10))["event"])

    assert events.count("status") >= 2 and events[-1] == "token", events


def test_the_orchestrator_socket_pings_while_a_reply_waits(chat_stack: LiveStack, http: httpx.Client) -> None:
    token = new_account(http).tokens["access_token"]
    with connect(f"ws://127.0.0.1:{chat_stack.http_port}/ws/chat?token={token}") as socket:
        socket.send(orjson.dumps({"message": "Bonjour", "model": "queued"}).decode())
        kinds: list[str] = []
        started = time.monotonic()
        while "token" not in kinds and time.monotonic() - started < 10:
            kinds.append(orjson.loads(socket.recv(timeout=10))["type"])

    assert kinds.index("token") >= 2 and set(kinds[: kinds.index("token")]) == {"ping"}, kinds
