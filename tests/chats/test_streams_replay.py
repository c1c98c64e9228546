"""Issue 15: the FoyerGPT stream as /openapi.json documents it, and replay from the journal."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from httpx_sse import connect_sse

from tests.chats.test_chats import REPLY, agent, chat
from tests.identity.helpers import new_account
from tests.support.live import LiveStack


def _frame_fits(schema: dict[str, Any], data: str) -> bool:
    """A `data:` line against the documented frames: [DONE], or JSON valid against the content schema."""
    done, frame = schema["oneOf"]
    if data == done["properties"]["data"]["const"]:
        return True
    jsonschema.validate(orjson.loads(data), frame["properties"]["data"]["contentSchema"])
    return True


def test_the_foyergpt_stream_is_what_the_document_says(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    response = document["paths"]["/api/messages/stream/{chat_id}"]["get"]["responses"]["200"]
    schema = response["content"]["text/event-stream"]["schema"]
    owner = new_account(http)
    # A reply, and one the model fails in the middle of: token frames, then an error frame.
    for model in ("fast", "broken"):
        created = chat(http, owner, agent_id=agent(http, owner, model=model)["id"])
        with connect_sse(
            http, "GET", f"/api/messages/stream/{created['id']}", params={"message": "Bonjour"}, headers=owner.bearer
        ) as source:
            events = list(source.iter_sse())
        assert events and all(event.event == "message" for event in events)  # no `event:` lines, as documented
        assert all(_frame_fits(schema, event.data) for event in events)
        # [DONE] ends a reply; one that failed ends with its error frame instead, as documented.
        assert events[-1].data == "[DONE]" if model == "fast" else "error" in orjson.loads(events[-1].data)


def _tokens(events: list[dict[str, Any]]) -> str:
    return "".join(event["token"]["text"] for event in events if "token" in event)


# The fast model's moment of leaving varies from run to run: a few runs of it.
@pytest.mark.parametrize("model", ["slow", *["fast"] * 4])
def test_a_client_killed_mid_generation_replays_the_rest_from_its_last_seq(http: httpx.Client, model: str) -> None:
    """The slow model (16 tokens 0.2 s apart): the client leaves while the server waits for the
    model. The fast one: it leaves while the server is sending, or after the last token."""
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model=model)["id"])
    seen: list[dict[str, Any]] = []
    with connect_sse(
        http, "GET", f"/api/messages/stream/{created['id']}", params={"message": "Bonjour"}, headers=owner.bearer
    ) as source:
        for event in source.iter_sse():
            seen.append(orjson.loads(event.data))
            if len(seen) == 2:
                break  # the connection dies mid-generation
    message_id = seen[0]["message_id"]
    # Replayed by message id: every event, a JSON list by default. It ends once the stream has
    # ended (the generation cancelled with the client), and the reply is stored by then.
    everything = http.post("/history/replay", json={"message_id": message_id}, headers=owner.bearer).json()
    stored = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"][-1]
    seqs = [event["seq"] for event in everything]
    assert seqs == list(range(len(seqs))) and everything[0]["status"]["chat_id"] == created["id"]
    end = everything[-1].get("error") or everything[-1]["final"]
    assert end["message_id"] == message_id
    # The stream's end says what was stored: cancelled and incomplete, or (the client left just as
    # the last token came) final and complete.
    if model == "slow" or "error" in everything[-1]:
        assert end["code"] == "CANCELLED" and stored["status"] == "incomplete" and REPLY.startswith(stored["content"])
    else:
        assert stored["status"] == "complete" and end["text"] == stored["content"] == REPLY
    if model == "slow":
        assert len(stored["content"]) < len(REPLY) / 2  # mid-generation indeed
    # The client saw the tokens of seq 1 and 2: it asks from seq 3 by the stream's req_id.
    rest = http.post(
        "/history/replay", json={"req_id": everything[0]["req_id"], "from_seq": 3}, headers=owner.bearer
    ).json()
    assert [event["seq"] for event in rest] == seqs[3:]
    text = "".join(frame["token"] for frame in seen) + _tokens(rest)
    assert text == stored["content"] == end.get("partial_text", end.get("text"))  # nothing missing, nothing repeated
    # Server-sent events when asked for, from the same place.
    with connect_sse(
        http,
        "POST",
        "/history/replay",
        json={"req_id": everything[0]["req_id"], "from_seq": 3},
        headers={**owner.bearer, "accept": "text/event-stream"},
    ) as source:
        frames = list(source.iter_sse())
    assert frames[-1].data == "[DONE]" and [int(frame.id) for frame in frames[:-1]] == seqs[3:]
    assert _tokens([orjson.loads(frame.data) for frame in frames[:-1]]) == _tokens(rest)


def test_a_replay_of_a_running_generation_follows_it_to_its_end(http: httpx.Client, chat_stack: LiveStack) -> None:
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="slow")["id"])
    with (
        httpx.Client(base_url=chat_stack.base_url, timeout=30) as reader,
        connect_sse(
            reader, "GET", f"/api/messages/stream/{created['id']}", params={"message": "x"}, headers=owner.bearer
        ) as source,
    ):
        frames = source.iter_sse()
        first = orjson.loads(next(frames).data)
        # Another connection replays while the reply is written: the journal, then the live rest.
        with connect_sse(
            http,
            "POST",
            "/history/replay",
            json={"message_id": first["message_id"]},
            headers={**owner.bearer, "accept": "text/event-stream"},
        ) as replay:
            # (`: ping` comments keep the connection alive while the model is slow; httpx-sse yields
            # them as events without data, which an EventSource never dispatches.)
            replayed = [event for event in replay.iter_sse() if event.data]
        original = [first["token"]] + [orjson.loads(frame.data)["token"] for frame in frames if frame.data != "[DONE]"]
    events = [orjson.loads(event.data) for event in replayed[:-1]]
    stored = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"][-1]
    assert [event.event for event in replayed[:-1]] == ["status"] + ["token"] * (len(events) - 2) + ["final"]
    assert _tokens(events) == "".join(original) == stored["content"] == events[-1]["final"]["text"] == REPLY


def test_replay_under_cookie_auth_needs_the_csrf_token(chat_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    body = {"req_id": "nope"}
    with httpx.Client(base_url=chat_stack.base_url, cookies={"access_token": owner.tokens["access_token"]}) as browser:
        refused = browser.post("/history/replay", json=body)
        checked = browser.post("/history/replay", json=body, headers={"x-csrf-token": owner.tokens["csrf_token"]})
    assert refused.status_code == 403 and refused.json()["code"] == "CSRF_ERROR"
    assert checked.status_code == 404  # past the CSRF check: an unknown stream


def test_only_the_owner_replays_a_stream(http: httpx.Client) -> None:
    owner, stranger = new_account(http), new_account(http)
    created = chat(http, owner)
    with connect_sse(
        http, "GET", f"/api/messages/stream/{created['id']}", params={"message": "x"}, headers=owner.bearer
    ) as source:
        message_id = orjson.loads(next(source.iter_sse()).data)["message_id"]
    mine = http.post("/history/replay", json={"message_id": message_id}, headers=owner.bearer)
    stored = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"][-1]["content"]
    assert mine.status_code == 200 and "".join(e["token"]["text"] for e in mine.json() if "token" in e) == stored
    assert stored and REPLY.startswith(stored)
    for body in ({"message_id": message_id}, {"req_id": mine.json()[0]["req_id"]}, {"req_id": "nope"}):
        assert http.post("/history/replay", json=body, headers=stranger.bearer).status_code == 404
