"""Reading the agent loop's streams in the tests."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import orjson
from httpx_sse import connect_sse
from relais.v1 import chat_pb2, chat_pb2_grpc
from websockets.sync.client import connect

from tests.identity.helpers import Account


def sse_events(http: httpx.Client, account: Account, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    """POST /api/chat with stream: true, as (event name, data) pairs up to [DONE]."""
    events = []
    with connect_sse(http, "POST", "/api/chat", json={**body, "stream": True}, headers=account.bearer) as source:
        assert source.response.status_code == 200, source.response.read()
        for event in source.iter_sse():
            if event.data == "[DONE]":
                break
            if not event.data:
                continue  # a keep-alive comment while the model works
            events.append((event.event, orjson.loads(event.data)))
    return events


def ws_events(http_port: int, account: Account, **body: Any) -> list[dict[str, Any]]:
    """One request on /ws/chat, its frames up to `response` or `error` (pings left out)."""
    frames = []
    token = account.tokens["access_token"]
    with connect(f"ws://127.0.0.1:{http_port}/ws/chat?token={token}") as socket:
        socket.send(orjson.dumps(body).decode())
        while True:
            frame = orjson.loads(socket.recv(timeout=900))
            if frame["type"] == "ping":
                continue
            frames.append(frame)
            if frame["type"] in ("response", "error"):
                return frames


def grpc_events(target: str, account: Account, **fields: Any) -> list[Any]:
    with grpc.insecure_channel(target) as channel:
        stub = chat_pb2_grpc.ConversationServiceStub(channel)
        metadata = [("authorization", f"Bearer {account.tokens['access_token']}")]
        return list(stub.Converse(chat_pb2.ConverseRequest(**fields), metadata=metadata, timeout=900))
