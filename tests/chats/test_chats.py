"""Chats and messages over HTTP and gRPC, on SQLite and PostgreSQL: ownership, history,
recorded replies, titles, failures."""

from __future__ import annotations

import time
from typing import Any

import grpc
import httpx
import orjson
import pytest
from httpx_sse import connect_sse
from relais.v1 import chat_pb2, chat_pb2_grpc

from server.chats.history import fit
from server.inference.backend import Role, Turn
from tests.identity.helpers import PASSWORD, Account, new_account
from tests.seeds.test_identity_examples import FoyerGPTAPI
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import default_tokens

REPLY = "".join(default_tokens("", 16))


def agent(http: httpx.Client, owner: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Expert Python", "system_prompt": "Tu es un expert en Python.", **fields}
    response = http.post("/api/agents", json=body, headers=owner.bearer)
    assert response.status_code == 201, response.text
    return dict(response.json())


def chat(http: httpx.Client, owner: Account, **fields: Any) -> dict[str, Any]:
    response = http.post("/api/chats", json=fields, headers=owner.bearer)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send(http: httpx.Client, owner: Account, chat_id: int, content: str) -> httpx.Response:
    return http.post("/api/messages", json={"chat_id": chat_id, "content": content}, headers=owner.bearer)


def test_a_chat_with_an_agent_and_an_exchange(http: httpx.Client, chat_triton: LiveTriton) -> None:
    owner = new_account(http)
    helper = agent(http, owner, avatar_url="/avatars/python.png")
    created = chat(http, owner, agent_id=helper["id"], title="Nouvelle discussion")
    assert (created["title"], created["user_id"], created["agent_id"]) == (
        "Nouvelle discussion",
        owner.user_id,
        helper["id"],
    )

    response = send(http, owner, created["id"], "Comment utiliser les décorateurs?")
    assert response.status_code == 200, response.text
    exchange = response.json()
    user, assistant = exchange["user_message"], exchange["assistant_message"]
    assert (user["role"], user["content"], user["chat_id"]) == (
        "user",
        "Comment utiliser les décorateurs?",
        created["id"],
    )
    assert (assistant["role"], assistant["content"], assistant["status"]) == ("assistant", REPLY, "complete")
    assert assistant["llm_model"] == "fast" and assistant["usage"]["completion_tokens"] == 16
    # The agent's system prompt framed the question.
    assert chat_triton.standin is not None
    prompt = bytes(chat_triton.standin.requests[-1].raw_input_contents[0])
    assert b"Tu es un expert en Python.\n\nUser: Comment utiliser les d\xc3\xa9corateurs?\nAssistant:" in prompt

    detail = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()
    assert detail["agent"] == {"id": helper["id"], "name": "Expert Python", "avatar_url": "/avatars/python.png"}
    assert [m["id"] for m in detail["messages"]] == [user["id"], assistant["id"]]
    assert detail["message_count"] == 2 and detail["last_message_at"]


def test_the_history_goes_to_the_model_and_the_first_exchange_titles_the_chat(
    http: httpx.Client, chat_triton: LiveTriton
) -> None:
    owner = new_account(http)
    created = chat(http, owner)
    assert created["title"] == "" and created["agent"] is None
    assert send(http, owner, created["id"], "Première question sur les listes Python").status_code == 200
    assert send(http, owner, created["id"], "Et les tuples ?").status_code == 200

    assert chat_triton.standin is not None
    prompt = bytes(chat_triton.standin.requests[-1].raw_input_contents[0])[4:].decode()  # after the length prefix
    assert "User: Première question sur les listes Python\nAssistant: tok0" in prompt
    assert prompt.endswith("User: Et les tuples ?\nAssistant:")
    titled = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()
    assert titled["title"] == "Première question sur les listes Python"


def test_chats_are_private_to_their_owner(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    mine = chat(http, owner, title="secret")
    chat(http, other)

    assert [c["id"] for c in http.get("/api/chats", headers=owner.bearer).json()["chats"]] == [mine["id"]]
    for method, path, body in (
        ("GET", f"/api/chats/{mine['id']}", None),
        ("PUT", f"/api/chats/{mine['id']}", {"title": "stolen"}),
        ("DELETE", f"/api/chats/{mine['id']}", None),
        ("POST", "/api/messages", {"chat_id": mine["id"], "content": "hello"}),
    ):
        response = http.request(method, path, json=body, headers=other.bearer)
        assert response.status_code == 404, (method, path, response.text)
    assert http.get(f"/api/chats/{mine['id']}", headers=owner.bearer).json()["message_count"] == 0


def test_a_private_agent_of_someone_else_cannot_be_used(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    private = agent(http, owner)
    response = http.post("/api/chats", json={"agent_id": private["id"]}, headers=other.bearer)
    assert response.status_code == 404


def test_listing_pages_most_recent_first_and_rename(http: httpx.Client) -> None:
    owner = new_account(http)
    first, second = chat(http, owner, title="a"), chat(http, owner, title="b")
    assert send(http, owner, first["id"], "bump").status_code == 200  # first is now the most active

    page = http.get("/api/chats", params={"limit": 1}, headers=owner.bearer).json()
    assert (page["total"], page["limit"], [c["id"] for c in page["chats"]]) == (2, 1, [first["id"]])
    assert http.get("/api/chats", params={"offset": 1}, headers=owner.bearer).json()["chats"][0]["id"] == second["id"]

    renamed = http.put(f"/api/chats/{second['id']}", json={"title": "Python - Fonctions"}, headers=owner.bearer)
    assert renamed.json()["title"] == "Python - Fonctions"
    assert http.put(f"/api/chats/{second['id']}", json={"title": " "}, headers=owner.bearer).status_code == 422


def test_a_message_over_4000_characters_is_refused_and_nothing_is_stored(http: httpx.Client) -> None:
    owner = new_account(http)
    created = chat(http, owner)
    response = send(http, owner, created["id"], "x" * 4001)
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "content"
    assert http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"] == []


def test_a_failing_model_keeps_the_partial_reply_with_status_error(http: httpx.Client) -> None:
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="broken")["id"])
    response = send(http, owner, created["id"], "hello")
    assert response.status_code == 503

    messages = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "error")]
    assert messages[1]["content"] == "".join(default_tokens("", 3))  # what came before the failure


def test_an_agent_naming_a_model_alias_is_served_by_its_target(http: httpx.Client) -> None:
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="mistral-medium")["id"])
    assert send(http, owner, created["id"], "hello").json()["assistant_message"]["llm_model"] == "fast"


def test_an_agent_naming_an_unknown_model_is_refused_with_the_valid_names(http: httpx.Client) -> None:
    owner = new_account(http)
    body = {"name": "Assistant", "system_prompt": "Tu aides.", "model": "mistral-large"}
    refused = http.post("/api/agents", json=body, headers=owner.bearer)
    created = agent(http, owner)
    changed = http.put(f"/api/agents/{created['id']}", json={"model": "gpt-9"}, headers=owner.bearer)

    for answer in (refused, changed):
        assert answer.status_code == 422, answer.text
        (detail,) = answer.json()["error"]["details"]
        assert detail["field"] == "model" and "fast" in detail["message"] and "mistral-medium" in detail["message"]


def test_deleting_a_chat_deletes_its_messages_and_an_agent_leaves_its_chats(http: httpx.Client) -> None:
    owner = new_account(http)
    helper = agent(http, owner)
    kept, removed = chat(http, owner, agent_id=helper["id"]), chat(http, owner)
    send(http, owner, removed["id"], "hello")
    assert http.delete(f"/api/chats/{removed['id']}", headers=owner.bearer).status_code == 200
    assert http.get(f"/api/chats/{removed['id']}", headers=owner.bearer).status_code == 404

    assert http.delete(f"/api/agents/{helper['id']}", headers=owner.bearer).status_code == 200
    orphan = http.get(f"/api/chats/{kept['id']}", headers=owner.bearer).json()
    assert (orphan["agent_id"], orphan["agent"]) == (None, None)


def test_messages_over_grpc(http: httpx.Client, chat_stack: LiveStack) -> None:
    owner = new_account(http)
    metadata = (("authorization", owner.bearer["Authorization"]),)
    with grpc.insecure_channel(chat_stack.grpc_target) as channel:
        chats = chat_pb2_grpc.ChatServiceStub(channel)
        messages = chat_pb2_grpc.MessageServiceStub(channel)
        created = chats.CreateChat(chat_pb2.CreateChatRequest(title="grpc"), metadata=metadata)
        exchange = messages.SendMessage(
            chat_pb2.SendMessageRequest(chat_id=created.id, content="hi"), metadata=metadata
        )
        assert exchange.assistant_message.content == REPLY
        assert exchange.assistant_message.status == chat_pb2.MESSAGE_STATUS_COMPLETE
        with pytest.raises(grpc.RpcError) as caught:
            messages.SendMessage(
                chat_pb2.SendMessageRequest(chat_id=created.id, content="hi", files=[7]), metadata=metadata
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_seed_python_example_runs_unchanged(http: httpx.Client, chat_stack: LiveStack) -> None:
    account = new_account(http)
    api = FoyerGPTAPI(base_url=f"{chat_stack.base_url}/api")
    api.login(account.email, PASSWORD)

    # "Utilisation", as written.
    agent = api.create_agent(name="Assistant Python", system_prompt="Tu es un expert Python", model="mistral-medium")
    chat = api.session.post(f"{api.base_url}/chats", json={"agent_id": agent["id"]}).json()
    response = api.send_message(chat["id"], "Comment optimiser ce code Python?")

    assert response["assistant_message"]["content"] == REPLY


def test_history_is_trimmed_oldest_first_keeping_the_system_prompt() -> None:
    turns = [Turn(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"turn {i} " + "x" * 400) for i in range(20)]
    turns.append(Turn(Role.USER, "the question"))
    kept = fit("Be brief.", turns, context_window=1024, reply_tokens=256)
    assert kept[0] == Turn(Role.SYSTEM, "Be brief.") and kept[-1] == Turn(Role.USER, "the question")
    assert 1 < len(kept) < len(turns)
    assert kept[1].role is Role.USER  # never starts on an assistant turn
    assert [t.content for t in kept[1:]] == [t.content for t in turns[-(len(kept) - 1) :]]  # the newest ones


def test_a_reply_streams_as_foyergpt_server_sent_events(http: httpx.Client) -> None:
    owner = new_account(http)
    created = chat(http, owner)
    with connect_sse(
        http, "GET", f"/api/messages/stream/{created['id']}", params={"message": "Bonjour"}, headers=owner.bearer
    ) as source:
        events = [event.data for event in source.iter_sse()]

    assert events[-1] == "[DONE]"
    tokens = [orjson.loads(data) for data in events[:-1]]
    assert "".join(token["token"] for token in tokens) == REPLY
    assert len({token["message_id"] for token in tokens}) == 1
    messages = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[1]["id"] == tokens[0]["message_id"] and messages[1]["content"] == REPLY


def test_a_streamed_reply_failing_midway_reports_and_keeps_the_partial_text(http: httpx.Client) -> None:
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="broken")["id"])
    with connect_sse(
        http, "GET", f"/api/messages/stream/{created['id']}", params={"message": "x"}, headers=owner.bearer
    ) as source:
        events = [orjson.loads(event.data) for event in source.iter_sse()]
    assert events[-1]["code"] == "UNAVAILABLE" and "model failure" in events[-1]["error"]
    messages = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"]
    assert (messages[1]["status"], messages[1]["content"]) == ("error", "".join(default_tokens("", 3)))


def test_a_streaming_client_that_leaves_keeps_an_incomplete_reply(
    http: httpx.Client, chat_stack: LiveStack, chat_triton: LiveTriton
) -> None:
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="slow")["id"])
    assert chat_triton.standin is not None
    cancelled = chat_triton.standin.cancelled
    with (
        httpx.Client(base_url=chat_stack.base_url, timeout=30) as client,
        connect_sse(
            client, "GET", f"/api/messages/stream/{created['id']}", params={"message": "x"}, headers=owner.bearer
        ) as source,
    ):
        for index, _ in enumerate(source.iter_sse()):
            if index == 2:
                break
    chat_triton.wait_idle()
    assert chat_triton.standin.cancelled == cancelled + 1
    # The reply is "incomplete" while it streams too (rewritten every FLUSH_EVERY): wait for the final
    # write, which holds at least the three tokens the client saw.
    deadline = time.monotonic() + 5
    while True:
        reply = http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"][-1]
        if reply["content"].startswith("tok0 é tok2 ") or reply["status"] != "incomplete":
            break
        assert time.monotonic() < deadline, reply
        time.sleep(0.05)
    assert reply["status"] == "incomplete" and reply["content"].startswith("tok0 é tok2 ")


def test_a_question_and_its_reply_row_are_stored_together(
    http: httpx.Client, chat_stack: LiveStack, chat_triton: LiveTriton
) -> None:
    """One transaction stores both: whoever sees the question sees its reply's row, "incomplete",
    although the queued model sends its first token only a second later."""
    owner = new_account(http)
    created = chat(http, owner, agent_id=agent(http, owner, model="queued")["id"])
    with (
        httpx.Client(base_url=chat_stack.base_url, timeout=30) as client,
        connect_sse(
            client, "GET", f"/api/messages/stream/{created['id']}", params={"message": "x"}, headers=owner.bearer
        ),
    ):
        deadline = time.monotonic() + 10
        while not (messages := http.get(f"/api/chats/{created['id']}", headers=owner.bearer).json()["messages"]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    chat_triton.wait_idle()  # the client left: the model stops
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "incomplete")]
    assert messages[1]["id"] == messages[0]["id"] + 1


def test_streaming_checks_like_sending(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    created = chat(http, owner)
    url = f"/api/messages/stream/{created['id']}"
    assert http.get(url, params={"message": "x"}, headers=other.bearer).status_code == 404
    assert http.get(url, params={"message": "x" * 4001}, headers=owner.bearer).status_code == 422
    assert http.get(url, params={"message": "x"}).status_code == 401
