"""Issue 24: Relais scaled out behind HAProxy (tests/support/topology.py): three gRPC replicas and two
bridges on the local PostgreSQL, Redis and one Milvus Lite server. Every request goes through the
balancer, which spreads gRPC calls over the replicas one call at a time; its statistics show
which replicas served a step, so each test proves the state it relies on crossed replicas.

The tests share one topology (it takes a minute to start) and run in file order: the last one
kills a replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from httpx_sse import connect_sse

from server.plugins.signing import generate_key, public_key_text
from tests.chats.test_rooms import Listener
from tests.events.live import authenticated, close_code, receive
from tests.identity.helpers import PASSWORD, unique_email
from tests.plugins.support import HELLO, packed, wait_until
from tests.support.topology import ADMIN, Topology, topology

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Small enough to reach in a test, per user, shared by every replica through Redis.
USER_LIMIT = 100


@pytest.fixture(scope="module")
def plugin_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, plugin_key: Ed25519PrivateKey) -> Iterator[Topology]:
    with topology(
        tmp_path_factory.mktemp("topology"),
        RELAIS_RATE_LIMIT_USER=f"{USER_LIMIT}/minute",
        RELAIS_PLUGINS_TRUSTED_KEYS=public_key_text(plugin_key.public_key()),
        # One plugin runtime for the three replicas, assembled by the first that needs it.
        RELAIS_PLUGINS_RUNTIME_DIR=str(tmp_path_factory.mktemp("plugin-runtime")),
    ) as running:
        yield running


@pytest.fixture
def http(scaled: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=scaled.url, timeout=60) as client:
        yield client


def sign_in(http: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = http.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def new_user(http: httpx.Client) -> tuple[str, dict[str, Any]]:
    email = unique_email("scale")
    http.post("/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
    return email, sign_in(http, email)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


def spread(scaled: Topology, step: Any, *, at_least: int = 3, attempts: int = 12) -> list[Any]:
    """Repeat `step` until the balancer sent it to `at_least` different replicas; its results."""
    results, seen = [], set()
    for _ in range(attempts):
        before = scaled.counts()
        results.append(step())
        seen |= scaled.served(before)
        if len(seen) >= at_least:
            return results
    raise AssertionError(f"only {sorted(seen)} served {attempts} tries")


def test_an_account_made_on_one_replica_signs_in_and_out_on_all(scaled: Topology, http: httpx.Client) -> None:
    before = scaled.counts()
    email, tokens = new_user(http)
    assert len(scaled.served(before)) >= 2  # registered on one replica, signed in on another

    # The session is good on every replica, then ended on one, at once refused on all.
    for response in spread(scaled, lambda: http.get("/auth/me", headers=bearer(tokens))):
        assert response.status_code == 200 and response.json()["email"] == email
    with authenticated(scaled.url, tokens["access_token"]) as socket:
        http.post("/auth/logout", json={}, headers=bearer(tokens)).raise_for_status()
        ended = time.monotonic()
        for response in spread(scaled, lambda: http.get("/auth/me", headers=bearer(tokens))):
            assert response.status_code == 401, response.text
        assert time.monotonic() - ended < 5
        assert close_code(socket, timeout=5) == 4401  # its live connection, on a bridge, closed too

    # Another session, terminated by the user's second one: the same everywhere.
    first, second = sign_in(http, email), sign_in(http, email)
    http.post(f"/sessions/{first['session_id']}/terminate", headers=bearer(second)).raise_for_status()
    for response in spread(scaled, lambda: http.get("/auth/me", headers=bearer(first))):
        assert response.status_code == 401
    assert http.get("/auth/me", headers=bearer(second)).status_code == 200


def test_the_rate_limit_is_one_budget_across_replicas(scaled: Topology, http: httpx.Client) -> None:
    _, tokens = new_user(http)
    before = scaled.counts()
    remaining = []
    for _ in range(USER_LIMIT + 3):
        response = http.get("/api/chats", headers=bearer(tokens))
        assert response.headers["x-ratelimit-limit"] == str(USER_LIMIT)
        remaining.append((response.status_code, int(response.headers["x-ratelimit-remaining"])))
    assert scaled.served(before) == {"r0", "r1", "r2"}
    # One counter in Redis: each request, whichever replica serves it, takes one from the same budget.
    assert [status for status, _ in remaining] == [200] * USER_LIMIT + [429] * 3
    assert [left for _, left in remaining[:USER_LIMIT]] == list(range(USER_LIMIT - 1, -1, -1))


def test_live_events_reach_clients_on_every_bridge(scaled: Topology, http: httpx.Client) -> None:
    email, tokens = new_user(http)
    chat = http.post("/api/chats", json={}, headers=bearer(tokens)).json()
    admin = sign_in(http, ADMIN[0], ADMIN[1])

    # One Socket.IO client per bridge (round robin), each in the chat's room.
    listeners = [Listener(scaled.url, tokens["access_token"]) for _ in scaled.bridges]
    try:
        for listener in listeners:
            assert listener.call("join_chat", {"chat_id": chat["id"]})["ok"]
        assert all(scaled.counts()[bridge.name] > 0 for bridge in scaled.bridges)
        stored = http.post("/api/messages", json={"chat_id": chat["id"], "content": "bonjour"}, headers=bearer(tokens))
        assert stored.status_code == 200, stored.text
        for listener in listeners:
            heard = [listener.next(timeout=15) for _ in range(2)]
            assert [(name, data["role"]) for name, data in heard] == [
                ("new_message", "user"),
                ("new_message", "assistant"),
            ]
    finally:
        for listener in listeners:
            listener.close()

    # xcore /ws: the administrator, on whichever bridge, hears a sign-in served by any replica.
    with authenticated(scaled.url, admin["access_token"]) as socket:
        again = sign_in(http, email)
        event = receive(socket, timeout=15)
        while event["event"] != "user.login":
            event = receive(socket, timeout=15)
        assert (event["data"]["email"], event["data"]["session_id"]) == (email, again["session_id"])


def test_a_document_uploaded_through_one_replica_is_found_and_served_by_all(
    scaled: Topology, http: httpx.Client
) -> None:
    _, tokens = new_user(http)
    chat = http.post("/api/chats", json={}, headers=bearer(tokens)).json()
    note = "Le pain au levain du fournil Martin lève pendant une nuit entière."
    uploaded = http.post(
        "/api/documents/upload",
        files={"file": ("fournil.md", note.encode())},
        data={"entity_type": "chat", "entity_id": str(chat["id"])},
        headers=bearer(tokens),
    )
    assert uploaded.status_code == 201, uploaded.text

    def ask() -> httpx.Response:
        question = {"chat_id": chat["id"], "content": "Combien de temps lève le pain du fournil Martin ?"}
        return http.post("/api/messages", json=question, headers=bearer(tokens))

    # Each replica searches the one Milvus server and finds the passage for the reply it writes.
    for response in spread(scaled, ask):
        assert response.status_code == 200, response.text
        sources = response.json()["assistant_message"]["sources"]
        assert [source["source"]["document_id"] for source in sources] == [uploaded.json()["id"]]
        assert sources[0]["text"] == note
    # Its bytes are on the volume the replicas share: every replica serves the download.
    for response in spread(scaled, lambda: http.get(f"/api/documents/{uploaded.json()['id']}", headers=bearer(tokens))):
        assert response.status_code == 200, response.text
        assert response.content == note.encode()


def test_a_scheduled_task_runs_once_per_tick_across_replicas(scaled: Topology, http: httpx.Client) -> None:
    admin = bearer(sign_in(http, ADMIN[0], ADMIN[1]))
    body = {
        "id": "scale-tick",
        "name": "Tick",
        "interval": {"seconds": 1},
        "action": "tool.call",
        "params": {"tool": "calculator", "arguments": {"expression": "6 * 7"}},
    }
    created = http.post("/system/tasks", json=body, headers=admin)
    assert created.status_code in (200, 201), created.text
    time.sleep(8)
    http.post("/system/tasks/scale-tick/pause", headers=admin).raise_for_status()

    def settled() -> dict[str, Any] | None:
        task = dict(http.get("/system/tasks/scale-tick", headers=admin).json())
        return task if task["running_count"] == 0 else None

    task = wait_until(settled, 30, interval=0.5)
    runs = task["history"]
    ticks = [run["planned_at"] for run in runs]
    # Every replica's planner saw every tick; each ran once, by whichever replica took it first.
    assert len(ticks) >= 5 and len(set(ticks)) == len(ticks), ticks
    assert all(run["status"] == "success" and "42" in str(run["output"]) for run in runs), runs
    assert len({run["executor"] for run in runs}) >= 2, runs


def test_a_plugin_installed_through_the_balancer_runs_on_every_replica(
    scaled: Topology, http: httpx.Client, plugin_key: Ed25519PrivateKey
) -> None:
    admin = bearer(sign_in(http, ADMIN[0], ADMIN[1]))
    files = {"file": ("plugin.zip", packed(HELLO, plugin_key), "application/zip")}
    assert http.post("/plugins/upload", files=files, headers=admin).status_code == 201
    assert http.post("/plugins/hello/enable", headers=admin).json()["state"] == "running"

    def greeted_everywhere() -> bool:
        """Its route answers on both bridges and from all three replicas (each runs its own process)."""
        try:
            answers = spread(scaled, lambda: http.get("/hello/greet/Ann", headers=admin))
        except AssertionError:
            return False
        return all(answer.status_code == 200 and answer.json()["message"] == "Hello, Ann!" for answer in answers)

    wait_until(greeted_everywhere, 120, interval=0.5)

    assert http.delete("/plugins/hello", headers=admin).status_code == 204

    def gone_everywhere() -> bool:
        """Both bridges dropped its route (so no request reaches a replica any more)."""
        answers = [http.get("/hello/greet/Ann", headers=admin) for _ in range(2 * len(scaled.bridges))]
        bridges = {answer.headers["x-relais-bridge"] for answer in answers}
        return bridges == {bridge.name for bridge in scaled.bridges} and all(a.status_code == 404 for a in answers)

    wait_until(gone_everywhere, 60, interval=0.5)


def test_a_killed_replica_ends_its_streams_honestly_and_replay_resumes_elsewhere(
    scaled: Topology, http: httpx.Client
) -> None:
    _, tokens = new_user(http)
    admin = bearer(sign_in(http, ADMIN[0], ADMIN[1]))  # the writer: an administrator's rate limit is high

    # Writes all along the kill: every one acknowledged (2xx) must be there at the end.
    acknowledged: list[int] = []
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=scaled.url, timeout=30) as writer:
            while not stop.is_set():
                response = writer.post("/api/chats", json={"title": f"w{len(acknowledged)}"}, headers=admin)
                if response.is_success:
                    acknowledged.append(response.json()["id"])
                time.sleep(0.02)

    received: list[dict[str, Any]] = []
    open_before = scaled.serving()
    with connect_sse(
        http, "POST", "/llm/stream", json={"prompt": "x", "max_tokens": 40}, headers=bearer(tokens)
    ) as source:
        frames = source.iter_sse()
        for frame in frames:
            received.append(orjson.loads(frame.data))
            if sum("token" in event for event in received) == 5:
                break
        # The replica whose open calls grew by this one (the bridges hold long calls open too:
        # their plugin-route watches and live subscriptions).
        now = scaled.serving()
        streaming = [replica.name for replica in scaled.replicas if now[replica.name] > open_before[replica.name]]
        assert len(streaming) == 1, (open_before, now)
        victim = scaled.replica(streaming[0])
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(0.5)
        victim.process.kill()
        for frame in frames:
            if frame.data != "[DONE]":
                received.append(orjson.loads(frame.data))
    last = received[-1]
    assert "error" in last and "final" not in last, last  # a terminal event, not a silent cut
    scaled.wait_down(victim.name)
    stop.set()
    writer.join(30)

    # Replayed by a surviving replica from the journal in Redis: what this client missed, then
    # the end the dead replica could not write.
    req_id = received[0]["req_id"]
    last_seq = max(event.get("seq", 0) for event in received if "error" not in event)
    replay = http.post("/history/replay", json={"req_id": req_id, "from_seq": last_seq + 1}, headers=bearer(tokens))
    assert replay.status_code == 200, replay.text
    replayed = replay.json()
    assert replayed[-1]["error"]["code"] == "UNAVAILABLE", replayed[-1]
    seqs = [event["seq"] for event in replayed]
    assert seqs == list(range(last_seq + 1, last_seq + 1 + len(seqs)))
    whole = http.post("/history/replay", json={"req_id": req_id}, headers=bearer(tokens)).json()
    tokens_before = [event["token"]["text"] for event in received if "token" in event]
    assert [event["token"]["text"] for event in whole if "token" in event][: len(tokens_before)] == tokens_before

    # No acknowledged write lost; the survivors carry on.
    assert len(acknowledged) > 10
    for chat_id in acknowledged:
        assert http.get(f"/api/chats/{chat_id}", headers=admin).status_code == 200
    for response in spread(scaled, lambda: http.get("/api/chats", headers=bearer(tokens)), at_least=2):
        assert response.status_code == 200
