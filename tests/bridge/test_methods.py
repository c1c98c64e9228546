"""Issue 12 item 14: a URL is the resource of its most specific template, OPTIONS lists every
method bound to it, and a method it lacks is a 405 whose Allow header lists the right ones."""

from __future__ import annotations

import httpx

from tests.identity.helpers import new_account


def allowed(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


def test_options_lists_every_method_of_the_resource(http: httpx.Client) -> None:
    agent = http.options("/api/agents/7")
    chats = http.options("/api/chats")

    assert agent.status_code == 204 and allowed(agent) == {"GET", "PUT", "DELETE", "OPTIONS"}
    assert chats.status_code == 204 and allowed(chats) == {"GET", "POST", "OPTIONS"}


def test_a_literal_segment_is_its_own_resource(http: httpx.Client) -> None:
    account = new_account(http)

    put_my = http.put("/api/agents/my", json={"name": "x"}, headers=account.bearer)
    get_my = http.get("/api/agents/my", headers=account.bearer)
    search = http.delete("/api/memory/search", headers=account.bearer)

    assert put_my.status_code == 405 and allowed(put_my) == {"GET", "OPTIONS"}
    assert put_my.json()["code"] == "METHOD_NOT_ALLOWED"
    assert get_my.status_code == 200
    assert search.status_code == 405 and allowed(search) == {"GET", "OPTIONS"}


def test_websocket_paths_answer_plain_http(http: httpx.Client) -> None:
    trace = http.request("TRACE", "/ws/chat")
    plain_get = http.get("/ws/chat")
    stream_get = http.get("/llm/stream")
    stream_options = http.options("/llm/stream")

    assert trace.status_code == 405 and allowed(trace) == {"GET", "OPTIONS"}
    assert plain_get.status_code == 426 and plain_get.headers["upgrade"] == "websocket"
    assert stream_get.status_code == 426
    assert allowed(stream_options) == {"GET", "POST", "OPTIONS"}
