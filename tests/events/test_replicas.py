"""Two `relais serve` processes sharing the local Redis: xcore /ws events, session ends, and the
stream journal cross replicas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
from httpx_sse import connect_sse

from tests.events.live import authenticated, close_code, receive
from tests.identity.helpers import PASSWORD, unique_email
from tests.support.replicas import two_replicas
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

ADMIN = ("replica-admin@relais.test", "replica-admin-pass-1234")


def test_ws_events_session_ends_and_replays_cross_replicas(tmp_path: Path, postgres_schema_url: str) -> None:
    triton = LiveTriton([StandInModel(name="slow", token_delay=0.1)]).start()
    models = [{"key": "slow", "backend": "triton", "url": triton.url, "model_name": "slow"}]
    admin_env = {"RELAIS_ADMIN_EMAIL": ADMIN[0], "RELAIS_ADMIN_PASSWORD": ADMIN[1], "RELAIS_MODELS": json.dumps(models)}
    with two_replicas(tmp_path, postgres_schema_url, **admin_env) as urls, httpx.Client(timeout=30) as http:
        boss = http.post(f"{urls[0]}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()
        email = unique_email("replica")
        http.post(f"{urls[1]}/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        user = http.post(f"{urls[1]}/auth/login", json={"email": email, "password": PASSWORD}).json()
        bearer = {"authorization": f"Bearer {user['access_token']}"}

        # A generation streamed by the first replica is replayed, live, by the second (Redis journal).
        with connect_sse(
            http, "POST", f"{urls[0]}/llm/stream", json={"prompt": "x", "max_tokens": 12}, headers={**bearer}
        ) as source:
            frames = source.iter_sse()
            status = orjson.loads(next(frames).data)
            replayed = http.post(f"{urls[1]}/history/replay", json={"req_id": status["req_id"]}, headers=bearer)
            streamed = [orjson.loads(frame.data) for frame in frames if frame.data != "[DONE]"]
        events = replayed.json()
        assert replayed.status_code == 200, replayed.text
        assert [event["seq"] for event in events] == list(range(len(events))) and "final" in events[-1]
        text = "".join(event["token"]["text"] for event in events if "token" in event)
        assert text == "".join(e["token"]["text"] for e in streamed if "token" in e) == events[-1]["final"]["text"]
        stranger = {"authorization": f"Bearer {boss['access_token']}"}
        refused = http.post(f"{urls[1]}/history/replay", json={"req_id": status["req_id"]}, headers=stranger)
        assert refused.status_code == 404

        with (
            authenticated(urls[0], boss["access_token"]) as admin_socket,
            authenticated(urls[0], user["access_token"]) as user_socket,
        ):
            # Signed in on the second replica, announced on the first.
            again = http.post(f"{urls[1]}/auth/login", json={"email": email, "password": PASSWORD}).json()
            login = receive(admin_socket)
            while login["event"] != "user.login":  # an administrator also hears the tasks' runs
                login = receive(admin_socket)
            assert (login["event"], login["data"]["email"], login["data"]["session_id"]) == (
                "user.login",
                email,
                again["session_id"],
            )
            # Logged out on the second replica: the first closes the session's socket.
            http.post(f"{urls[1]}/auth/logout", json={}, headers=bearer).raise_for_status()
            assert close_code(user_socket, timeout=5) == 4401
    triton.close()


def test_every_way_a_session_ends_closes_its_connections_on_the_other_replica(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    import time

    from websockets.sync.client import connect

    from tests.events.test_session_end import SocketIOClient

    admin_env = {"RELAIS_ADMIN_EMAIL": ADMIN[0], "RELAIS_ADMIN_PASSWORD": ADMIN[1]}
    with two_replicas(tmp_path, postgres_schema_url, **admin_env) as urls, httpx.Client(timeout=30) as http:
        boss = http.post(f"{urls[1]}/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()

        def terminate(user: dict[str, Any], other: dict[str, Any]) -> None:
            bearer = {"authorization": f"Bearer {other['access_token']}"}
            http.post(f"{urls[1]}/sessions/{user['session_id']}/terminate", headers=bearer).raise_for_status()

        def change_password(user: dict[str, Any], other: dict[str, Any]) -> None:
            body = {"current_password": PASSWORD, "new_password": "another-horse-43"}
            bearer = {"authorization": f"Bearer {other['access_token']}"}
            http.put(f"{urls[1]}/user/password", json=body, headers=bearer).raise_for_status()

        def deactivate(user: dict[str, Any], other: dict[str, Any]) -> None:
            bearer = {"authorization": f"Bearer {boss['access_token']}"}
            http.post(f"{urls[1]}/admin/users/{user['user']['id']}/deactivate", headers=bearer).raise_for_status()

        for way in (terminate, change_password, deactivate):
            email = unique_email("replica")
            http.post(f"{urls[1]}/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
            user, other = (
                http.post(f"{urls[1]}/auth/login", json={"email": email, "password": PASSWORD}).json() for _ in range(2)
            )
            token = user["access_token"]
            chat = http.post(f"{urls[0]}/api/chats", json={}, headers={"authorization": f"Bearer {token}"}).json()
            rooms = SocketIOClient(urls[0], token, chat["id"])
            port = urls[0].rsplit(":", 1)[1]
            try:
                with (
                    authenticated(urls[0], token) as events,
                    connect(f"ws://127.0.0.1:{port}/ws/chat?token={token}") as orchestrator,
                ):
                    way(user, other)
                    ended_at = time.monotonic()

                    assert rooms.gone.wait(5), f"{way.__name__}: Socket.IO still open"
                    assert close_code(events, timeout=5) == 4401
                    assert close_code(orchestrator, timeout=5) == 4401
                    assert time.monotonic() - ended_at < 1.0, (way.__name__, time.monotonic() - ended_at)
            finally:
                rooms.client.disconnect()
