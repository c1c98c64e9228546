"""Issue 12 item 3: when a session ends (logout, termination, password change, deactivation),
every live connection of that session closes: Socket.IO, /ws, /ws/chat, gRPC subscriptions, SSE streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
import socketio
from httpx_sse import connect_sse
from websockets.sync.client import connect

from tests.chats.test_chats import agent, chat
from tests.events.live import Subscriber, authenticated, close_code
from tests.identity.helpers import PASSWORD, Account, admin, login
from tests.support.live import LiveStack

# Generous for a loaded machine: the server ends the calls as soon as the end is published.
WITHIN = 5.0
# What the issue asks: every live connection closed within a second of the session's end.
LIMIT = 1.0


def _logout(http: httpx.Client, watched: Account, other: dict[str, Any]) -> None:
    http.post("/auth/logout", json={}, headers=watched.bearer).raise_for_status()


def _terminate(http: httpx.Client, watched: Account, other: dict[str, Any]) -> None:
    session_id = watched.tokens["session_id"]
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    http.post(f"/sessions/{session_id}/terminate", headers=headers).raise_for_status()


def _change_password(http: httpx.Client, watched: Account, other: dict[str, Any]) -> None:
    body = {"current_password": PASSWORD, "new_password": "another-horse-43"}
    http.put(
        "/user/password", json=body, headers={"Authorization": f"Bearer {other['access_token']}"}
    ).raise_for_status()


def _deactivate(http: httpx.Client, watched: Account, other: dict[str, Any]) -> None:
    http.post(f"/admin/users/{watched.user_id}/deactivate", headers=admin(http).bearer).raise_for_status()


WAYS: dict[str, Callable[[httpx.Client, Account, dict[str, Any]], None]] = {
    "logout": _logout,
    "terminate": _terminate,
    "password change": _change_password,
    "deactivation": _deactivate,
}


class SocketIOClient:
    def __init__(self, base_url: str, token: str, chat_id: int) -> None:
        self.gone = threading.Event()
        self.client = socketio.Client(reconnection=False)
        self.client.on("disconnect", lambda *args: self.gone.set())
        self.client.connect(
            base_url, socketio_path="/ws/socket.io", auth={"token": token}, transports=["websocket"], wait_timeout=10
        )
        assert self.client.call("join_chat", {"chat_id": chat_id}, timeout=10)["ok"]


class SseReader:
    """A FoyerGPT reply stream on the slow model (16 tokens, 3.2 s), read in a thread."""

    def __init__(self, base_url: str, account: Account, chat_id: int) -> None:
        self.frames: list[str] = []
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(base_url, account, chat_id), daemon=True)
        self.thread.start()
        assert self.first.wait(10)

    def _read(self, base_url: str, account: Account, chat_id: int) -> None:
        with (
            httpx.Client(base_url=base_url, timeout=30) as client,
            connect_sse(
                client, "GET", f"/api/messages/stream/{chat_id}", params={"message": "x"}, headers=account.bearer
            ) as source,
        ):
            for event in source.iter_sse():
                self.frames.append(event.data)
                self.first.set()


@pytest.fixture
def watched(http: httpx.Client) -> Iterator[tuple[Account, dict[str, Any]]]:
    """An account signed in twice: the watched session, and another one of the same user."""
    from tests.identity.helpers import new_account

    account = new_account(http)
    yield account, login(http, account.email)


@pytest.mark.parametrize("way", list(WAYS))
def test_every_live_connection_of_an_ended_session_closes(
    chat_stack: LiveStack, http: httpx.Client, watched: tuple[Account, dict[str, Any]], way: str
) -> None:
    account, other = watched
    token = account.tokens["access_token"]
    created = chat(http, account, agent_id=agent(http, account, model="slow")["id"])
    rooms = SocketIOClient(chat_stack.base_url, token, created["id"])
    subscriber = Subscriber(chat_stack.grpc_target, token, [])
    survivor = Subscriber(chat_stack.grpc_target, other["access_token"], []) if way != "deactivation" else None
    try:
        with (
            authenticated(chat_stack.base_url, token) as socket,
            connect(f"ws://127.0.0.1:{chat_stack.http_port}/ws/chat?token={token}") as orchestrator,
            connect(f"ws://127.0.0.1:{chat_stack.http_port}/llm/stream?token={token}") as assistant,
        ):
            reply = SseReader(chat_stack.base_url, account, created["id"])
            WAYS[way](http, account, other)
            ended_at = time.monotonic()

            assert rooms.gone.wait(WITHIN), "Socket.IO connection still open"
            assert close_code(socket, timeout=WITHIN) == 4401
            assert close_code(orchestrator, timeout=WITHIN) == 4401
            assert close_code(assistant, timeout=WITHIN) == 4401
            # Every one closed within the second the issue asks for (they close together: the
            # end is one event on the bus).
            assert time.monotonic() - ended_at < LIMIT, time.monotonic() - ended_at
            # The end itself may come first (the stream's topics include session.ended), then the status.
            ended = subscriber.next(timeout=WITHIN)
            if not isinstance(ended, grpc.RpcError):
                assert ended.event == "session.ended"
                ended = subscriber.next(timeout=WITHIN)
            assert isinstance(ended, grpc.RpcError) and ended.code() == grpc.StatusCode.UNAUTHENTICATED
            reply.thread.join(WITHIN)
            assert not reply.thread.is_alive(), "SSE stream still open"
            assert '"error"' in reply.frames[-1] or "UNAUTHENTICATED" in reply.frames[-1], reply.frames[-1]
        if survivor is not None:
            # The user's other session keeps its streams: only the watched one ended.
            assert survivor.events.empty()
    finally:
        rooms.client.disconnect()
        subscriber.close()
        if survivor is not None:
            survivor.close()
