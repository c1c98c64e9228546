"""Issue 14, item 2: Idempotency-Key on creating requests, over HTTP (the header, forwarded by the
generic bridge as gRPC metadata) and gRPC: a retry never creates twice."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import grpc
import httpx
from relais.v1 import chat_pb2, chat_pb2_grpc

from tests.identity.helpers import Account, new_account
from tests.support.live import LiveStack


def key() -> str:
    return str(uuid.uuid4())


def post(http: httpx.Client, owner: Account, path: str, body: dict[str, Any], idempotency_key: str) -> httpx.Response:
    return http.post(path, json=body, headers={**owner.bearer, "Idempotency-Key": idempotency_key})


def titles(http: httpx.Client, owner: Account) -> list[str]:
    return [chat["title"] for chat in http.get("/api/chats", headers=owner.bearer).json()["chats"]]


def test_a_retry_with_the_same_key_and_body_gets_the_first_answer(http: httpx.Client) -> None:
    owner, same = new_account(http), key()
    first = post(http, owner, "/api/chats", {"title": "Une seule fois"}, same)
    again = post(http, owner, "/api/chats", {"title": "Une seule fois"}, same)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert titles(http, owner) == ["Une seule fois"]


def test_the_same_key_with_another_body_is_a_422(http: httpx.Client) -> None:
    owner, same = new_account(http), key()
    assert post(http, owner, "/api/chats", {"title": "A"}, same).status_code == 201
    reused = post(http, owner, "/api/chats", {"title": "B"}, same)
    assert reused.status_code == 422 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert titles(http, owner) == ["A"]


def test_a_duplicate_sent_while_the_first_runs_is_a_409(http: httpx.Client) -> None:
    owner, same = new_account(http), key()
    agent = http.post("/api/agents", json={"name": "L", "system_prompt": "x", "model": "slow"}, headers=owner.bearer)
    chat_id = post(http, owner, "/api/chats", {"agent_id": agent.json()["id"]}, key()).json()["id"]
    body = {"chat_id": chat_id, "content": "Bonjour"}
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(post(http, owner, "/api/messages", body, same)))
    first.start()
    time.sleep(0.5)  # the first reply takes 1.6 s
    duplicate = post(http, owner, "/api/messages", body, same)
    first.join(30)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert answers[0].status_code == 200, answers[0].text
    replay = post(http, owner, "/api/messages", body, same)
    assert replay.json() == answers[0].json() and replay.headers["idempotent-replayed"] == "true"
    messages = http.get(f"/api/chats/{chat_id}", headers=owner.bearer).json()["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant"]


def test_a_request_that_failed_before_saving_anything_is_run_again(http: httpx.Client) -> None:
    owner, stranger, same = new_account(http), new_account(http), key()
    private = http.post("/api/agents", json={"name": "P", "system_prompt": "x"}, headers=stranger.bearer).json()
    refused = post(http, owner, "/api/chats", {"agent_id": private["id"]}, same)
    assert refused.status_code == 404
    # Nothing was kept for the key: the same key now serves another request.
    assert post(http, owner, "/api/chats", {"title": "Sans agent"}, same).status_code == 201


def test_keys_are_private_to_their_caller(http: httpx.Client) -> None:
    first, second, same = new_account(http), new_account(http), key()
    assert post(http, first, "/api/chats", {"title": "Moi"}, same).status_code == 201
    theirs = post(http, second, "/api/chats", {"title": "Moi"}, same)
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert titles(http, second) == ["Moi"]


def test_a_malformed_key_is_a_400(http: httpx.Client) -> None:
    owner = new_account(http)
    assert post(http, owner, "/api/chats", {"title": "x"}, "k" * 256).status_code == 400
    assert titles(http, owner) == []


def test_grpc_callers_send_the_key_as_metadata(faults_stack: LiveStack, http: httpx.Client) -> None:
    owner, same = new_account(http), key()
    metadata = (("authorization", f"Bearer {owner.tokens['access_token']}"), ("idempotency-key", same))
    with grpc.insecure_channel(faults_stack.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        request = chat_pb2.CreateChatRequest(title="gRPC")
        first, call = stub.CreateChat.with_call(request, metadata=metadata)
        again, replayed = stub.CreateChat.with_call(request, metadata=metadata)
        assert dict(call.trailing_metadata()).get("idempotent-replayed") is None
        assert dict(replayed.trailing_metadata())["idempotent-replayed"] == "true"
        assert again.id == first.id
        try:
            stub.CreateChat(chat_pb2.CreateChatRequest(title="autre"), metadata=metadata)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            raise AssertionError("a reused key was accepted")
    assert titles(http, owner) == ["gRPC"]


def test_openapi_declares_the_header_where_it_is_honoured(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]

    def headers(path: str, verb: str) -> list[str]:
        return [p["name"] for p in paths[path][verb]["parameters"] if p["in"] == "header"]

    for path in ("/api/chats", "/api/messages", "/api/agents", "/api/memory", "/api/documents/upload"):
        assert headers(path, "post") == ["Idempotency-Key"], path
        assert {"409", "422"} <= set(paths[path]["post"]["responses"])
    assert headers("/api/chats", "get") == [] and headers("/api/chat", "post") == []
    assert "Idempotent-Replayed" in paths["/api/chats"]["post"]["responses"]["201"]["headers"]
