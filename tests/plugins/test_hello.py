"""The hello plugin end to end: packed, signed and uploaded; its route over HTTP and gRPC with
the caller (never their credentials); its MCP tool and task action through the plugin domain;
its events on xcore's /ws; a reload onto a new version while requests run."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from server.auth import Principal
from server.errors import Unavailable, ValidationFailed
from tests.events.live import authenticated, receive
from tests.plugins.support import HELLO, copy_plugin, entries, packed, upload, wait_until
from tests.support.live import LiveStack

CREDENTIAL_KEYS = {"authorization", "cookie", "x-api-key", "x-csrf-token", "x-session-id"}
ALICE = Principal(subject="user:7", user_id=7, roles=frozenset({"user"}), permissions=frozenset({"users:read"}))


def test_the_route_answers_with_the_caller_and_never_their_credentials(
    stack: LiveStack, http: httpx.Client, hello: dict[str, Any]
) -> None:
    assert http.get("/hello/greet/Ann").json() == {"message": "Hello, Ann!", "version": "1.0.0"}
    with httpx.Client(base_url=stack.base_url) as browser:
        from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

        session = browser.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
        seen = browser.get("/hello/whoami", headers={"X-CSRF-Token": session["csrf_token"]}).json()

    assert seen["subject"] == str(session["user"]["id"]) and seen["roles"] == ["admin"]
    assert seen["user_id"] == session["user"]["id"]
    assert {"x-relais-subject", "x-relais-roles", "x-request-id"} <= set(seen["metadata_keys"])
    assert not CREDENTIAL_KEYS & set(seen["metadata_keys"])


def test_the_plugin_inherits_no_secret_from_relais(http: httpx.Client, hello: dict[str, Any]) -> None:
    environment = set(http.get("/hello/whoami").json()["environment"])

    assert {name for name in environment if name.startswith("RELAIS_")} <= {
        "RELAIS_PLUGIN_DIR",
        "RELAIS_PLUGIN_ID",
        "RELAIS_PLUGIN_MAGIC_COOKIE",
        "RELAIS_PLUGIN_SOCKET_DIR",
        "RELAIS_PLUGIN_WORK_DIR",
    }
    assert not environment & {"PYTEST_CURRENT_TEST", "VIRTUAL_ENV", "USER"}
    assert "PYTEST_CURRENT_TEST" in os.environ  # what the plugin did not get


def test_plugin_errors_keep_their_status(http: httpx.Client, hello: dict[str, Any]) -> None:
    response = http.get("/hello/greet/" + "x" * 101)

    assert response.status_code == 400
    assert response.json()["detail"] == "name must be 1 to 100 characters"


def _hello_classes(hello_bundle: bytes) -> tuple[Any, Any]:
    files = descriptor_pb2.FileDescriptorSet.FromString(entries(hello_bundle)["descriptors.binpb"])
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    method = pool.FindMethodByName("hello.v1.HelloService.Greet")
    return message_factory.GetMessageClass(method.input_type), message_factory.GetMessageClass(method.output_type)


def test_the_plugin_s_rpc_is_served_on_relais_grpc_port(
    stack: LiveStack, hello: dict[str, Any], hello_bundle: bytes
) -> None:
    request, response = _hello_classes(hello_bundle)
    with grpc.insecure_channel(stack.grpc_target) as channel:
        greet = channel.unary_unary(
            "/hello.v1.HelloService/Greet",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        answer = greet(request(name="Bo"), metadata=[("authorization", "Bearer user-token")])
        with pytest.raises(grpc.RpcError) as refused:
            greet(request(name="Bo"))

    assert answer.message == "Hello, Bo!"
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def _use_tool(stack: LiveStack) -> tuple[list[str], str, str]:
    assert stack.server.plugins is not None
    [source] = stack.server.plugins.tool_sources()
    async with source.session(ALICE) as session:
        tools = await session.list_tools()
        result = await session.call_tool("greet", {"name": "Ann"})
    text = result.content[0].text  # type: ignore[union-attr]
    return [tool.name for tool in tools.tools], source.name, text


def test_its_tools_through_an_mcp_session(stack: LiveStack, hello: dict[str, Any]) -> None:
    names, source, text = stack.run(_use_tool(stack))

    assert (names, source, text) == (["greet"], "plugin:hello", "Hello, Ann!")


def test_its_task_action_runs_as_the_principal(stack: LiveStack, hello: dict[str, Any]) -> None:
    assert stack.server.plugins is not None
    [action] = stack.server.plugins.actions()

    output = stack.run(action.run({"name": "Ann"}, ALICE))
    with pytest.raises(ValidationFailed) as invalid:
        stack.run(action.run({"name": ""}, ALICE))

    assert (action.name, action.params_schema["required"]) == ("hello.greet", ["name"])
    assert output == {"message": "Hello, Ann!", "for": "user:7"}
    assert invalid.value.violations[0].field == "name"


def test_a_stopped_plugin_s_action_is_unavailable(stack: LiveStack, http: httpx.Client, hello: dict[str, Any]) -> None:
    assert stack.server.plugins is not None
    [action] = stack.server.plugins.actions()
    http.post("/plugins/hello/stop")

    with pytest.raises(Unavailable, match="not running"):
        stack.run(action.run({"name": "Ann"}, ALICE))
    assert stack.server.plugins.actions() == [] and stack.server.plugins.tool_sources() == []


@pytest.mark.slow
def test_loads_and_reloads_reach_xcore_s_ws(stack: LiveStack, http: httpx.Client, hello_bundle: bytes) -> None:
    assert upload(http, hello_bundle).status_code == 201
    try:
        with authenticated(stack.base_url, "admin-token") as socket:
            socket.send(orjson.dumps({"type": "subscribe", "events": ["plugin.*"]}).decode())
            assert receive(socket)["event"] == "subscribed"
            http.post("/plugins/hello/enable")
            loaded = receive(socket)
            http.post("/plugins/hello/reload")
            reloaded = receive(socket)
    finally:
        http.delete("/plugins/hello")

    assert (loaded["event"], loaded["data"]["name"], loaded["data"]["version"]) == ("plugin.loaded", "hello", "1.0.0")
    assert loaded["data"]["details"]["routes"] == ["GET /hello/greet/{name}", "GET /hello/whoami"]
    assert (reloaded["event"], reloaded["data"]["name"]) == ("plugin.reloaded", "hello")


def test_route_gone_after_delete(http: httpx.Client, hello_bundle: bytes, stack: LiveStack) -> None:
    from tests.plugins.support import leftovers, openapi_paths

    upload(http, hello_bundle)
    http.post("/plugins/hello/enable")
    wait_until(lambda: "/hello/whoami" in openapi_paths(http))
    assert http.get("/hello/whoami").status_code == 200

    assert http.delete("/plugins/hello").status_code == 204

    wait_until(lambda: "/hello/whoami" not in openapi_paths(http))
    assert http.get("/hello/whoami").status_code == 404
    assert leftovers(stack.settings.data_dir / "plugins", "hello") == []
    assert all(item["id"] != "hello" for item in http.get("/system/plugins").json()["items"])


@pytest.mark.slow
def test_reload_onto_a_new_version_while_requests_run(
    stack: LiveStack, http: httpx.Client, hello: dict[str, Any], plugin_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    newer = packed(copy_plugin(HELLO, tmp_path / "hello-2", version="2.0.0"), plugin_key)
    outcomes: Counter[tuple[int, str]] = Counter()
    done = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=stack.base_url, headers={"Authorization": "Bearer user-token"}) as client:
            while not done.is_set():
                response = client.get("/hello/greet/Ann")
                outcomes[(response.status_code, response.json().get("version", response.text))] += 1

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: sum(outcomes.values()) > 20)
        updated = upload(http, newer)
        wait_until(lambda: outcomes[(200, "2.0.0")] > 20)
        reloaded = http.post("/plugins/hello/reload")
        seen = sum(outcomes.values())
        wait_until(lambda: sum(outcomes.values()) > seen + 20)
    finally:
        done.set()
        for worker in workers:
            worker.join()

    assert (updated.json()["status"], updated.json()["plugin"]["version"]) == ("updated", "2.0.0")
    assert reloaded.status_code == 200
    assert set(outcomes) == {(200, "1.0.0"), (200, "2.0.0")}, outcomes
    assert http.get("/system/plugins/hello").json()["restarts"] == 0
