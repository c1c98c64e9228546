"""Socket.IO at /ws/socket.io with the python-socketio client: rooms, new_message, typing,
and rooms spanning two processes through Redis."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from tests.chats.test_chats import chat, send
from tests.identity.helpers import PASSWORD, Account, new_account, unique_email
from tests.support.live import LiveStack
from tests.support.replicas import two_replicas


class Listener:
    """A Socket.IO client that queues what it hears."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        for name in ("new_message", "user_typing"):
            self.client.on(name, lambda data, name=name: self.events.put((name, data)))
        self.client.connect(
            base_url,
            socketio_path="/ws/socket.io",
            auth={"token": token} if token else None,
            transports=["websocket"],
            # The handshake checks the token through the server: more than the 1 s default on a busy machine.
            wait_timeout=10,
        )

    def call(self, event: str, data: Any) -> Any:
        return self.client.call(event, data, timeout=10)

    def next(self, timeout: float = 10) -> tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def listeners(chat_stack: LiveStack) -> Iterator[list[Listener]]:
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        listener.close()


def listen(opened: list[Listener], base_url: str, account: Account | None) -> Listener:
    listener = Listener(base_url, account.tokens["access_token"] if account else None)
    opened.append(listener)
    return listener


def test_a_joined_room_hears_every_stored_message(
    chat_stack: LiveStack, http: httpx.Client, listeners: list[Listener]
) -> None:
    owner = new_account(http)
    created = chat(http, owner)
    listener = listen(listeners, chat_stack.base_url, owner)
    assert listener.call("join_chat", {"chat_id": created["id"]}) == {"ok": True, "chat_id": created["id"]}

    exchange = send(http, owner, created["id"], "hello").json()

    heard = [listener.next(), listener.next()]
    assert [(name, data["id"], data["role"]) for name, data in heard] == [
        ("new_message", exchange["user_message"]["id"], "user"),
        ("new_message", exchange["assistant_message"]["id"], "assistant"),
    ]
    assert heard[1][1]["status"] == "complete" and heard[1][1]["content"] == exchange["assistant_message"]["content"]

    assert listener.call("leave_chat", {"chat_id": created["id"]}) == {"ok": True}
    send(http, owner, created["id"], "after leaving")
    with pytest.raises(queue.Empty):
        listener.next(timeout=0.5)


def test_only_chats_one_may_read_can_be_joined(
    chat_stack: LiveStack, http: httpx.Client, listeners: list[Listener]
) -> None:
    owner, other = new_account(http), new_account(http)
    created = chat(http, owner)
    intruder = listen(listeners, chat_stack.base_url, other)
    assert intruder.call("join_chat", {"chat_id": created["id"]})["code"] == "NOT_FOUND"
    assert intruder.call("join_chat", {"chat_id": "nope"})["code"] == "BAD_REQUEST"
    send(http, owner, created["id"], "private")
    with pytest.raises(queue.Empty):
        intruder.next(timeout=0.5)


def test_typing_reaches_the_other_members_only(
    chat_stack: LiveStack, http: httpx.Client, listeners: list[Listener]
) -> None:
    owner = new_account(http)
    created = chat(http, owner)
    first, second = (listen(listeners, chat_stack.base_url, owner) for _ in range(2))
    for member in (first, second):
        assert member.call("join_chat", {"chat_id": created["id"]})["ok"]

    first.client.emit("typing", {"chat_id": created["id"], "is_typing": True})

    assert second.next() == (
        "user_typing",
        {"chat_id": created["id"], "user_id": owner.user_id, "is_typing": True},
    )
    with pytest.raises(queue.Empty):
        first.next(timeout=0.5)


def test_connecting_needs_credentials(chat_stack: LiveStack) -> None:
    for token in (None, "forged"):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(
                chat_stack.base_url,
                socketio_path="/ws/socket.io",
                auth={"token": token} if token else None,
                transports=["websocket"],
            )


def test_rooms_span_processes_through_redis(tmp_path: Path, postgres_schema_url: str) -> None:
    with two_replicas(tmp_path, postgres_schema_url) as urls, httpx.Client(timeout=30) as http:
        email = unique_email("rooms")
        http.post(f"{urls[0]}/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        token = http.post(f"{urls[0]}/auth/login", json={"email": email, "password": PASSWORD}).json()
        bearer = {"authorization": f"Bearer {token['access_token']}"}
        created = http.post(f"{urls[0]}/api/chats", json={}, headers=bearer).json()

        listener = Listener(urls[0], token["access_token"])
        try:
            assert listener.call("join_chat", {"chat_id": created["id"]})["ok"]
            # Stored by the other process (its model is down: the user message and the failed reply).
            http.post(f"{urls[1]}/api/messages", json={"chat_id": created["id"], "content": "hi"}, headers=bearer)
            heard = [listener.next(), listener.next()]
        finally:
            listener.close()
    assert [(data["role"], data["status"]) for _, data in heard] == [("user", "complete"), ("assistant", "error")]
