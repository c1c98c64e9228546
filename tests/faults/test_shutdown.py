"""Issue 14, item 3: SIGTERM keeps RELAIS_SHUTDOWN_GRACE, on a real `relais serve` process.

Seven short streams (they end within the grace) and seven long ones, one of each per dialect
(SSE and WebSocket generation, gRPC generation, FoyerGPT SSE, Orchestrator SSE, /ws/chat, gRPC
chat replies), plus a Socket.IO connection in a chat room, are running when SIGTERM comes. At
once `/health` answers 503 `draining` and new calls are refused; the short streams finish; the
long ones get a terminal error event when the grace ends and their partial replies are stored
`incomplete`; the process exits within grace + 1 s.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import socketio
from httpx_sse import aconnect_sse
from relais.v1 import chat_pb2, chat_pb2_grpc, inference_pb2, inference_pb2_grpc
from websockets.asyncio.client import connect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.process import RelaisProcess
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel, default_tokens

pytestmark = pytest.mark.slow

GRACE = 3.0
SHORT_TOKENS = 12  # 1.2 s at 0.1 s a token: done well within the grace
LONG_TOKENS = 100  # 20 s at 0.2 s a token: still running when the grace ends


@dataclass
class Outcome:
    """How one stream ended, seen by its client."""

    name: str
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str = ""  # "complete" or "error"
    message: str = ""
    at: float = 0.0
    text: str = ""

    def token(self, text: str) -> None:
        self.text += text
        self.started.set()

    def end(self, how: str, message: str = "") -> None:
        if not self.ended:
            self.ended, self.message, self.at = how, message, time.monotonic()
            self.started.set()


@pytest.fixture(scope="module")
def triton() -> Iterator[LiveTriton]:
    def short(prompt: str, max_tokens: int) -> list[str]:
        return default_tokens(prompt, min(max_tokens, SHORT_TOKENS))

    live = LiveTriton(
        [StandInModel(name="short", token_delay=0.1, tokens=short), StandInModel(name="long", token_delay=0.2)]
    )
    live.start()
    yield live
    live.close()


def models(url: str) -> str:
    return json.dumps(
        [
            {"key": key, "backend": "triton", "url": url, "model_name": key, "context_window": 4096}
            for key in ("short", "long")
        ]
    )


class Client:
    """One signed-in user of the process, over HTTP, WebSockets and gRPC."""

    def __init__(self, relais: RelaisProcess, http: httpx.AsyncClient, token: str) -> None:
        self.relais, self.http, self.token = relais, http, token
        self.headers = {"authorization": f"Bearer {token}"}

    def max_tokens(self, model: str) -> int:
        return SHORT_TOKENS if model == "short" else LONG_TOKENS

    async def chat_with(self, model: str) -> int:
        agent = await self.http.post(
            "/api/agents", json={"name": model, "system_prompt": "Sois bref.", "model": model}, headers=self.headers
        )
        chat = await self.http.post("/api/chats", json={"agent_id": agent.json()["id"]}, headers=self.headers)
        return int(chat.json()["id"])

    async def sse_generate(self, model: str, outcome: Outcome) -> None:
        body = {"prompt": "x", "model": model, "max_tokens": self.max_tokens(model)}
        async with aconnect_sse(self.http, "POST", "/llm/stream", json=body, headers=dict(self.headers)) as source:
            async for event in source.aiter_sse():
                data = orjson.loads(event.data) if event.data != "[DONE]" else {}
                if event.event == "token":
                    outcome.token(data["token"]["text"])
                elif event.event == "final":
                    outcome.end("complete")
                elif event.event == "error":
                    outcome.end("error", data.get("error", data).get("message", ""))

    async def ws_generate(self, model: str, outcome: Outcome) -> None:
        url = self.relais.base_url.replace("http", "ws", 1) + f"/llm/stream?token={self.token}"
        async with connect(url) as socket:
            payload = {"prompt": "x", "model": model, "max_tokens": self.max_tokens(model)}
            await socket.send(orjson.dumps({"type": "request", "req_id": "1", "payload": payload}).decode())
            async for raw in socket:
                frame = orjson.loads(raw)
                if frame["event"] == "token":
                    outcome.token(frame["payload"])
                elif frame["event"] == "end":
                    outcome.end("complete")
                    return
                elif frame["event"] == "error":
                    outcome.end("error", frame["payload"]["message"])
                    return

    async def grpc_generate(self, model: str, outcome: Outcome) -> None:
        async with grpc.aio.insecure_channel(self.relais.grpc_target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = inference_pb2.GenerateRequest(prompt="x", model=model, max_tokens=self.max_tokens(model))
            await self._grpc_events(stub.GenerateStream(request, metadata=tuple(self.headers.items())), outcome)

    async def grpc_chat(self, model: str, outcome: Outcome) -> None:
        chat_id = await self.chat_with(model)
        async with grpc.aio.insecure_channel(self.relais.grpc_target) as channel:
            stub = chat_pb2_grpc.MessageServiceStub(channel)
            request = chat_pb2.StreamMessageRequest(chat_id=chat_id, message="x")
            await self._grpc_events(stub.StreamMessage(request, metadata=tuple(self.headers.items())), outcome)

    @staticmethod
    async def _grpc_events(call: Any, outcome: Outcome) -> None:
        try:
            async for event in call:
                if event.HasField("token"):
                    outcome.token(event.token.text)
                elif event.HasField("final"):
                    outcome.end("complete")
                elif event.HasField("error"):
                    outcome.end("error", event.error.message)
        except grpc.aio.AioRpcError as error:
            outcome.end("error", f"status {error.code().name}: {error.details()}")

    async def foyer_sse(self, model: str, outcome: Outcome) -> None:
        chat_id = await self.chat_with(model)
        url = f"/api/messages/stream/{chat_id}"
        async with aconnect_sse(self.http, "GET", url, params={"message": "x"}, headers=dict(self.headers)) as source:
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    outcome.end("complete")
                    continue
                data = orjson.loads(event.data)
                if "token" in data:
                    outcome.token(data["token"])
                else:
                    outcome.end("error", data["error"])

    async def orchestrator_sse(self, model: str, outcome: Outcome) -> None:
        body = {"message": "x", "model": model, "stream": True}
        async with aconnect_sse(self.http, "POST", "/api/chat", json=body, headers=dict(self.headers)) as source:
            async for event in source.aiter_sse():
                data = orjson.loads(event.data) if event.data != "[DONE]" else {}
                if event.event == "token":
                    outcome.token(data["token"]["text"])
                elif event.event == "result":
                    outcome.end("complete")
                elif event.event == "error":
                    outcome.end("error", data.get("error", data).get("message", data.get("detail", "")))

    async def orchestrator_ws(self, model: str, outcome: Outcome) -> None:
        url = self.relais.base_url.replace("http", "ws", 1) + f"/ws/chat?token={self.token}"
        async with connect(url) as socket:
            await socket.send(orjson.dumps({"message": "x", "model": model}).decode())
            async for raw in socket:
                frame = orjson.loads(raw)
                if frame["type"] == "token":
                    outcome.token(frame["content"])
                elif frame["type"] == "response":
                    outcome.end("complete")
                    return
                elif frame["type"] == "error":
                    outcome.end("error", frame["content"])
                    return


DIALECTS = ("sse_generate", "ws_generate", "grpc_generate", "grpc_chat", "foyer_sse", "orchestrator_sse")
DIALECTS += ("orchestrator_ws",)


async def socketio_room(relais: RelaisProcess, client: Client, outcome: Outcome) -> None:
    """A Socket.IO connection in a chat room: it carries no generation, and ends with the server.
    (python-socketio's asyncio client needs aiohttp: its threaded client runs in a worker thread.)"""
    chat_id = await client.chat_with("short")
    loop = asyncio.get_running_loop()
    sio = socketio.Client(reconnection=False)
    disconnected = threading.Event()
    sio.on("error", lambda data: loop.call_soon_threadsafe(outcome.end, "error", data["message"]))
    sio.on("disconnect", lambda *args: disconnected.set())

    def join() -> bool:
        sio.connect(
            relais.base_url,
            socketio_path="/ws/socket.io",
            auth={"token": client.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        return bool(sio.call("join_chat", {"chat_id": chat_id}, timeout=10)["ok"])

    assert await asyncio.to_thread(join)
    outcome.started.set()
    await asyncio.to_thread(disconnected.wait, 60)


async def run_streams(relais: RelaisProcess) -> tuple[dict[str, Outcome], dict[str, Any]]:
    async with httpx.AsyncClient(base_url=relais.base_url, timeout=60) as http:
        login = await http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        client = Client(relais, http, login.json()["access_token"])
        outcomes: dict[str, Outcome] = {}
        tasks: list[asyncio.Task[None]] = []
        for model in ("short", "long"):
            for dialect in DIALECTS:
                outcome = outcomes[f"{dialect}/{model}"] = Outcome(f"{dialect}/{model}")
                tasks.append(asyncio.create_task(getattr(client, dialect)(model, outcome)))
        room = outcomes["socketio"] = Outcome("socketio")
        tasks.append(asyncio.create_task(socketio_room(relais, client, room)))
        await asyncio.wait_for(asyncio.gather(*(outcome.started.wait() for outcome in outcomes.values())), 60)

        signalled = time.monotonic()
        relais.terminate()
        observed: dict[str, Any] = {"signalled": signalled}
        await asyncio.sleep(0.1)
        health = await http.get("/health")
        observed["health"] = (health.status_code, health.json()["status"], health.headers.get("retry-after"))
        refused = await http.post("/llm/infer", json={"prompt": "x", "model": "short"}, headers=client.headers)
        observed["refused"] = (refused.status_code, refused.json()["code"], refused.headers.get("retry-after"))
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), GRACE + 10)
        return outcomes, observed


def stored_replies(data_dir: Path) -> list[tuple[str, str, str]]:
    """(model, status, content) of every assistant reply."""
    with sqlite3.connect(data_dir / "relais.db") as database:
        rows = database.execute("SELECT llm_model, status, content FROM messages WHERE role = 'assistant'")
        return [(str(model), str(status), str(content)) for model, status, content in rows]


def test_sigterm_keeps_the_grace_and_ends_every_stream_with_a_terminal_event(
    triton: LiveTriton, tmp_path: Path
) -> None:
    relais = RelaisProcess(
        tmp_path,
        RELAIS_SHUTDOWN_GRACE=str(GRACE),
        RELAIS_MODELS=models(triton.url),
        RELAIS_DEFAULT_MODEL="short",
        RELAIS_LLM_DEFAULT_MAX_TOKENS=str(LONG_TOKENS),
    )
    with relais:
        outcomes, observed = asyncio.run(run_streams(relais))
        assert relais.process is not None
        relais.process.wait(GRACE + 10)
        exited_after = time.monotonic() - observed["signalled"]

    assert observed["health"] == (503, "draining", "1")
    assert observed["refused"] == (503, "SHUTTING_DOWN", "1")
    summary = "\n".join(
        f"{n}: {o.ended} {o.at - observed['signalled']:.2f} {o.message[:50]}" for n, o in outcomes.items()
    )
    for name, outcome in outcomes.items():
        ended_after = outcome.at - observed["signalled"]
        if name.endswith("/short"):
            assert outcome.ended == "complete", (name, summary)
            assert ended_after < GRACE, (name, ended_after)
        else:
            assert outcome.ended == "error" and "shutting down" in outcome.message, (name, summary)
            assert GRACE - 0.5 < ended_after < GRACE + 1, (name, summary)
    # The server aims at grace + 1 s (cli/serve.py gives its dependencies what is left of it); the
    # extra second is the scheduling slack of a shared two-core runner, where the suite's other
    # processes compete for the CPU (a timing, not a speed measurement: those live in bench/).
    assert exited_after < GRACE + 2, relais.log()[-3000:]
    assert relais.process.returncode == 0

    replies = stored_replies(tmp_path)
    assert len(replies) == 8  # two per chat dialect: grpc_chat, foyer_sse, orchestrator_sse, orchestrator_ws
    for model, status, content in replies:
        assert status == ("complete" if model == "short" else "incomplete"), (model, status)
        assert content.startswith("tok0 é ")
