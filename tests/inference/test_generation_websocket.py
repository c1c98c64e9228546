"""The local assistant's WebSocket, /llm/stream: schema, multiplexing, cancel, auth."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.inference.conftest import USER
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import default_tokens


def ws_url(stack: LiveStack, query: str = "") -> str:
    return f"ws://127.0.0.1:{stack.http_port}/llm/stream{query}"


def start(req_id: str, payload: Any) -> str:
    return orjson.dumps(
        {"type": "request", "req_id": req_id, "source": "test", "event": "start", "payload": payload, "ts": 0}
    ).decode()


def receive(socket: ClientConnection) -> dict[str, Any]:
    return orjson.loads(socket.recv(timeout=10))


def until_end(socket: ClientConnection, req_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Messages per req_id until each has ended (end or error)."""
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    open_ids = set(req_ids)
    while open_ids:
        message = receive(socket)
        seen[message["req_id"]].append(message)
        if message["event"] in ("end", "error"):
            open_ids.discard(message["req_id"])
    return seen


def test_a_request_streams_status_tokens_end(llm_stack: LiveStack) -> None:
    with connect(ws_url(llm_stack), additional_headers={"Authorization": "Bearer user-token"}) as socket:
        socket.send(start("1", {"prompt": "Bonjour", "max_tokens": 4}))
        messages = until_end(socket, {"1"})["1"]
    events = [message["event"] for message in messages]
    assert events[0] == "status" and events[-1] == "end" and set(events[1:-1]) == {"token"}
    assert all(m["type"] == "event" and m["source"] == "llm" and isinstance(m["ts"], int) for m in messages)
    assert "".join(m["payload"] for m in messages if m["event"] == "token") == "".join(default_tokens("Bonjour", 4))
    assert messages[-1]["payload"]["final"]["text"] == "".join(default_tokens("Bonjour", 4))


def test_concurrent_requests_share_one_socket(llm_stack: LiveStack) -> None:
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send(start("a", {"prompt": "first", "model": "slow", "max_tokens": 6}))
        socket.send(start("b", {"prompt": "second", "model": "slow", "max_tokens": 6}))
        seen = until_end(socket, {"a", "b"})
    for req_id, prompt in (("a", "first"), ("b", "second")):
        tokens = "".join(m["payload"] for m in seen[req_id] if m["event"] == "token")
        assert tokens == "".join(default_tokens(prompt, 6))


def test_cancel_stops_one_request_and_its_generation(llm_stack: LiveStack, triton: LiveTriton) -> None:
    assert triton.standin is not None
    before = triton.standin.cancelled
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send(start("long", {"prompt": "x", "model": "slow", "max_tokens": 500}))
        while receive(socket)["event"] != "token":
            pass
        socket.send(orjson.dumps({"type": "request", "req_id": "long", "event": "cancel"}).decode())
        messages = until_end(socket, {"long"})["long"]
        assert messages[-1]["event"] == "end" and messages[-1]["payload"] == {"finish_reason": "cancelled"}
        # The socket still serves new requests.
        socket.send(start("next", {"prompt": "y", "max_tokens": 2}))
        assert until_end(socket, {"next"})["next"][-1]["event"] == "end"
    triton.wait_idle()
    assert triton.standin.cancelled == before + 1


def test_closing_the_socket_cancels_its_generations(llm_stack: LiveStack, triton: LiveTriton) -> None:
    assert triton.standin is not None
    before = triton.standin.cancelled
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send(start("1", {"prompt": "x", "model": "slow", "max_tokens": 500}))
        while receive(socket)["event"] != "token":
            pass
    triton.wait_idle()
    assert triton.standin.cancelled == before + 1


def test_bad_messages_get_error_events(llm_stack: LiveStack) -> None:
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send("{not json")
        error = receive(socket)
        assert (error["type"], error["event"], error["req_id"]) == ("error", "error", None)
        assert error["payload"]["code"] == "BAD_REQUEST"

        socket.send(start("m", {"prompt": "x", "model": "gpt-9"}))
        error = receive(socket)
        assert error["req_id"] == "m" and error["payload"]["code"] == "UNKNOWN_MODEL"
        assert error["payload"]["status"] == 400

        socket.send(start("d", {"prompt": "x", "model": "late"}))
        error = receive(socket)
        assert error["payload"]["code"] == "BACKEND_UNAVAILABLE" and error["payload"]["status"] == 503

        socket.send(start("p", {"max_tokens": "many"}))
        assert receive(socket)["payload"]["code"] == "VALIDATION_ERROR"


def test_the_handshake_needs_credentials(llm_stack: LiveStack) -> None:
    with pytest.raises(InvalidStatus) as caught, connect(ws_url(llm_stack)):
        pass
    assert caught.value.response.status_code == 401
    assert orjson.loads(caught.value.response.body)["code"] == "AUTHENTICATION_ERROR"

    with pytest.raises(InvalidStatus) as caught, connect(ws_url(llm_stack, "?token=forged")):
        pass
    assert caught.value.response.status_code == 401


def test_cookie_sessions_work_from_the_same_origin_only(llm_stack: LiveStack) -> None:
    with httpx.Client(base_url=llm_stack.base_url) as http:
        login = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        cookie = f"access_token={login.cookies['access_token']}"
    host = f"127.0.0.1:{llm_stack.http_port}"
    with connect(ws_url(llm_stack), additional_headers={"Cookie": cookie, "Origin": f"http://{host}"}) as socket:
        socket.send(start("1", {"prompt": "x", "max_tokens": 1}))
        assert until_end(socket, {"1"})["1"][-1]["event"] == "end"

    with (
        pytest.raises(InvalidStatus) as caught,
        connect(ws_url(llm_stack), additional_headers={"Cookie": cookie, "Origin": "https://evil.example"}),
    ):
        pass
    assert caught.value.response.status_code == 403


def test_many_requests_on_one_socket_are_bounded(llm_stack: LiveStack) -> None:
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        for index in range(17):
            socket.send(start(str(index), {"prompt": "x", "model": "slow", "max_tokens": 200}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = receive(socket)
            if message["type"] == "error":
                assert message["req_id"] == "16" and message["payload"]["code"] == "RATE_LIMIT"
                break
        else:
            pytest.fail("the 17th concurrent request was accepted")


def resume(stream_id: str, from_seq: int) -> str:
    return orjson.dumps({"type": "request", "event": "resume", "req_id": stream_id, "from_seq": from_seq}).decode()


def test_a_lost_socket_resumes_its_stream_from_the_last_seen_seq(llm_stack: LiveStack, http: httpx.Client) -> None:
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send(start("a", {"prompt": "x", "model": "slow", "max_tokens": 200}))
        status = receive(socket)
        seen = [receive(socket) for _ in range(3)]  # the events of seq 1, 2, 3
    stream_id = status["payload"]["req_id"]
    assert status["event"] == "status" and status["payload"]["seq"] == 0
    assert [message["event"] for message in seen] == ["token"] * 3
    # The connection was lost mid-generation (which cancelled it); a new socket asks for the rest.
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        socket.send(resume(stream_id, 4))
        rest = until_end(socket, {stream_id})[stream_id]
        socket.send(resume("someone-elses-or-none", 0))
        unknown = receive(socket)
    journal = http.post("/history/replay", json={"req_id": stream_id}, headers=USER)
    assert journal.status_code == 200 and journal.headers["content-type"].startswith("application/json"), (
        journal.status_code,
        journal.headers,
        journal.text[:500],
    )
    journal = journal.json()
    kept = journal[-1]["error"]
    assert rest[-1]["event"] == "error" and rest[-1]["payload"]["code"] == kept["code"] == "CANCELLED"
    text = "".join(m["payload"] for m in seen) + "".join(m["payload"] for m in rest if m["event"] == "token")
    assert text == kept["partial_text"] == "".join(e["token"]["text"] for e in journal if "token" in e)
    assert 0 < len(text) < len("".join(default_tokens("x", 200)))
    assert unknown["type"] == "error" and unknown["payload"]["code"] == "NOT_FOUND"


def test_a_second_socket_resumes_a_running_stream_and_follows_it_live(llm_stack: LiveStack) -> None:
    with (
        connect(ws_url(llm_stack, "?token=user-token")) as first,
        connect(ws_url(llm_stack, "?token=user-token")) as second,
    ):
        first.send(start("b", {"prompt": "y", "model": "slow", "max_tokens": 40}))
        stream_id = receive(first)["payload"]["req_id"]
        second.send(resume(stream_id, 1))
        followed = until_end(second, {stream_id})[stream_id]
        original = until_end(first, {"b"})["b"]
    tokens = "".join(default_tokens("y", 40))
    assert "".join(m["payload"] for m in followed if m["event"] == "token") == tokens
    assert "".join(m["payload"] for m in original if m["event"] == "token") == tokens
    assert followed[-1]["event"] == "end" and followed[-1]["payload"]["final"]["text"] == tokens


def test_a_socket_serves_any_number_of_journaled_generations(llm_stack: LiveStack) -> None:
    """Every generation of a socket shares its handshake's request id; each is journaled apart."""
    stream_ids = set()
    with connect(ws_url(llm_stack, "?token=user-token")) as socket:
        for index in range(80):
            socket.send(start(str(index), {"prompt": "x", "max_tokens": 1}))
            messages = until_end(socket, {str(index)})[str(index)]
            assert messages[-1]["event"] == "end", messages[-1]
            stream_ids.add(messages[0]["payload"]["req_id"])
    assert len(stream_ids) == 80
