"""EventService.Subscribe over gRPC and xcore's /ws over HTTP: who hears what, auth, filters."""

from __future__ import annotations

import time

import grpc
import httpx
import orjson
import pytest
from google.protobuf import json_format
from relais.v1 import live_pb2, live_pb2_grpc
from websockets.sync.client import connect

from server.events.topics import PLUGIN_LOADED, PLUGIN_RELOADED, TASK_COMPLETED, PluginChanged, TaskCompleted
from tests.events.live import Subscriber, authenticated, close_code, publish, receive, ws_url
from tests.identity.helpers import admin, new_account
from tests.support.live import LiveStack


def test_a_subscriber_hears_its_own_tasks_and_plugins_but_not_others_tasks(
    chat_stack: LiveStack, http: httpx.Client
) -> None:
    owner, other, boss = new_account(http), new_account(http), admin(http)
    listening = {
        name: Subscriber(chat_stack.grpc_target, account.tokens["access_token"], ["task.completed", "plugin.*"])
        for name, account in (("owner", owner), ("boss", boss))
    }
    try:
        publish(chat_stack, TASK_COMPLETED, TaskCompleted(task_id=1, owner_id=other.user_id, name="theirs"))
        publish(chat_stack, TASK_COMPLETED, TaskCompleted(task_id=2, owner_id=owner.user_id, name="mine"))
        publish(chat_stack, PLUGIN_LOADED, PluginChanged(name="weather", version="1.0"))
        heard = {
            name: [subscriber.next() for _ in range(3 if name == "boss" else 2)]
            for name, subscriber in listening.items()
        }
    finally:
        for subscriber in listening.values():
            subscriber.close()
    # Publication order is kept, so the owner's first event being its own task proves the other's was withheld.
    assert [(event.event, json_format.MessageToDict(event.data).get("name")) for event in heard["owner"]] == [
        ("task.completed", "mine"),
        ("plugin.loaded", "weather"),
    ]
    assert [event.event for event in heard["boss"]] == ["task.completed", "task.completed", "plugin.loaded"]
    assert heard["owner"][0].ts.seconds >= int(time.time()) - 60


def test_an_unknown_topic_is_refused_naming_the_field(chat_stack: LiveStack, http: httpx.Client) -> None:
    account = new_account(http)
    with grpc.insecure_channel(chat_stack.grpc_target) as channel:
        stub = live_pb2_grpc.EventServiceStub(channel)
        call = stub.Subscribe(
            live_pb2.SubscribeRequest(topics=["plugin.loaded", "chat.message"]),
            metadata=[("authorization", f"Bearer {account.tokens['access_token']}")],
        )
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(call))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "topics[1]" in str(refused.value.trailing_metadata()) or "topics[1]" in refused.value.details()


def test_subscribing_needs_credentials(chat_stack: LiveStack) -> None:
    with grpc.insecure_channel(chat_stack.grpc_target) as channel:
        call = live_pb2_grpc.EventServiceStub(channel).Subscribe(live_pb2.SubscribeRequest())
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(call))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_ws_user_login_reaches_administrators_only(chat_stack: LiveStack, http: httpx.Client) -> None:
    user = new_account(http)
    with (
        authenticated(chat_stack.base_url, admin(http).tokens["access_token"]) as boss,
        authenticated(chat_stack.base_url, user.tokens["access_token"]) as watcher,
    ):
        signed_in = new_account(http)
        login = receive(boss)
        assert (login["event"], login["data"]["email"], login["data"]["user_id"]) == (
            "user.login",
            signed_in.email,
            signed_in.user_id,
        )
        assert login["ts"].endswith("Z")
        publish(chat_stack, PLUGIN_RELOADED, PluginChanged(name="weather", version="1.1"))
        # The user's next event is the plugin's: the sign-in was withheld.
        frame = receive(watcher)
        assert (frame["event"], frame["data"]) == (
            "plugin.reloaded",
            {"name": "weather", "version": "1.1", "details": {}},
        )


@pytest.mark.parametrize("way", ["query", "header"])
def test_ws_takes_the_token_in_the_handshake_too(chat_stack: LiveStack, http: httpx.Client, way: str) -> None:
    token = new_account(http).tokens["access_token"]
    query, headers = ("?token=" + token, None) if way == "query" else ("", {"Authorization": f"Bearer {token}"})
    with connect(ws_url(chat_stack.base_url, query), additional_headers=headers) as socket:
        assert receive(socket)["data"]["topics"] == [
            "user.login",
            "plugin.loaded",
            "plugin.reloaded",
            "task.completed",
            "task.failed",
            "session.ended",
        ]
        publish(chat_stack, PLUGIN_LOADED, PluginChanged(name="notes"))
        assert receive(socket)["data"]["name"] == "notes"


def test_ws_subscribe_narrows_the_events(chat_stack: LiveStack, http: httpx.Client) -> None:
    account = new_account(http)
    with authenticated(chat_stack.base_url, account.tokens["access_token"]) as socket:
        socket.send(orjson.dumps({"type": "subscribe", "events": ["task.completed"]}).decode())
        assert receive(socket)["data"] == {"topics": ["task.completed"]}
        publish(chat_stack, PLUGIN_LOADED, PluginChanged(name="ignored"))
        publish(chat_stack, TASK_COMPLETED, TaskCompleted(task_id="t-1", owner_id=account.user_id, result={"n": 3}))
        frame = receive(socket)
        assert (frame["event"], frame["data"]["task_id"], frame["data"]["result"]) == (
            "task.completed",
            "t-1",
            {"n": 3},
        )
        socket.send(orjson.dumps({"type": "subscribe", "events": ["nope"]}).decode())
        refused = receive(socket)
        assert (refused["event"], refused["data"]["code"]) == ("error", "VALIDATION_ERROR")
        socket.send(orjson.dumps({"type": "ping"}).decode())
        assert receive(socket)["event"] == "pong"


@pytest.mark.parametrize("first", [None, {"type": "auth", "token": "Bearer forged"}, {"type": "hello"}])
def test_ws_without_valid_auth_closes_with_4401_within_5_seconds(
    chat_stack: LiveStack, first: dict[str, str] | None
) -> None:
    opened = time.monotonic()
    with connect(ws_url(chat_stack.base_url)) as socket:
        if first is not None:
            socket.send(orjson.dumps(first).decode())
        assert close_code(socket, timeout=7) == 4401
    # The documented deadline (5 s, plus scheduling on a loaded machine); a bad message closes at once.
    assert time.monotonic() - opened < (5.5 if first is None else 2.0)
