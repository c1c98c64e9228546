"""Issue 14, item 1: a backend stream that ends cleanly but without its own end marker (Triton's
triton_final_response, OpenAI's finish_reason) is an error on every dialect, never a normal
finish; the partial text is kept in the error and in the stored reply, whose status is `error`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest
from httpx_sse import connect_sse
from relais.v1 import chat_pb2, chat_pb2_grpc, events_pb2, inference_pb2, inference_pb2_grpc
from websockets.sync.client import connect

from tests.conftest import stack_settings
from tests.faults.conftest import CUT_AFTER
from tests.identity.helpers import Account, new_account
from tests.inference.test_openai_backend import openai_server  # noqa: F401 - a fixture: the real llama.cpp server
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_standin import default_tokens

USER = {"authorization": "Bearer user-token"}
# connect_sse adds its Accept header to the dict it is given: gRPC calls get their own tuple.
USER_METADATA = (("authorization", "Bearer user-token"),)
PARTIAL = "".join(default_tokens("", CUT_AFTER))


def grpc_events(call: Any) -> tuple[list[events_pb2.StreamEvent], grpc.RpcError | None]:
    events: list[events_pb2.StreamEvent] = []
    try:
        for event in call:
            events.append(event)
    except grpc.RpcError as error:
        return events, error
    return events, None


@pytest.mark.parametrize("model", ["cut", "cut-trt"])
def test_grpc_generation_ends_with_an_error_event_and_unavailable(faults_stack: LiveStack, model: str) -> None:
    with grpc.insecure_channel(faults_stack.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(prompt="Bonjour", model=model, max_tokens=12)
        events, error = grpc_events(stub.GenerateStream(request, metadata=USER_METADATA, timeout=30))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds[0] == "status" and kinds[-1] == "error" and "final" not in kinds
    assert "".join(event.token.text for event in events if event.HasField("token")) == PARTIAL
    failure = events[-1].error
    assert failure.code == "UNAVAILABLE" and failure.partial_text == PARTIAL
    assert "without its final response" in failure.message


def test_unary_generation_is_a_503_naming_the_truncation(http: httpx.Client) -> None:
    response = http.post("/llm/infer", json={"prompt": "x", "model": "cut"}, headers=USER)
    assert response.status_code == 503
    assert response.json()["code"] == "BACKEND_TRUNCATED"


def test_sse_generation_ends_with_an_error_event_not_done(http: httpx.Client) -> None:
    with connect_sse(http, "POST", "/llm/stream", json={"prompt": "x", "model": "cut"}, headers=dict(USER)) as source:
        events = list(source.iter_sse())
    assert all(event.data != "[DONE]" for event in events)
    assert events[-1].event == "error"
    failure = orjson.loads(events[-1].data)["error"]
    assert failure["code"] == "UNAVAILABLE" and failure["partial_text"] == PARTIAL


def test_the_local_assistant_websocket_gets_an_error_not_an_end(faults_stack: LiveStack) -> None:
    url = f"ws://127.0.0.1:{faults_stack.http_port}/llm/stream?token=user-token"
    with connect(url) as socket:
        socket.send(
            orjson.dumps(
                {"type": "request", "req_id": "1", "event": "start", "payload": {"prompt": "x", "model": "cut"}}
            ).decode()
        )
        frames = []
        while not frames or frames[-1]["event"] not in ("end", "error"):
            frames.append(orjson.loads(socket.recv(timeout=10)))
    assert frames[-1]["type"] == "error" and frames[-1]["payload"]["code"] == "UNAVAILABLE"
    assert "".join(frame["payload"] for frame in frames if frame["event"] == "token") == PARTIAL


def cut_chat(http: httpx.Client, owner: Account) -> int:
    agent = http.post(
        "/api/agents", json={"name": "Cut", "system_prompt": "Be brief.", "model": "cut"}, headers=owner.bearer
    )
    assert agent.status_code == 201, agent.text
    chat = http.post("/api/chats", json={"agent_id": agent.json()["id"]}, headers=owner.bearer)
    assert chat.status_code == 201, chat.text
    return int(chat.json()["id"])


def stored_reply(http: httpx.Client, owner: Account, chat_id: int) -> tuple[str, str]:
    messages = http.get(f"/api/chats/{chat_id}", headers=owner.bearer).json()["messages"]
    assert [message["role"] for message in messages] == ["user", "assistant"]
    return messages[1]["status"], messages[1]["content"]


def test_foyergpt_sse_reply_is_an_error_stored_with_its_partial_text(http: httpx.Client) -> None:
    owner = new_account(http)
    chat_id = cut_chat(http, owner)
    url = f"/api/messages/stream/{chat_id}"
    with connect_sse(http, "GET", url, params={"message": "x"}, headers=owner.bearer) as source:
        frames = [event.data for event in source.iter_sse()]
    assert "[DONE]" not in frames
    last = orjson.loads(frames[-1])
    assert last["code"] == "UNAVAILABLE" and "without its final response" in last["error"]
    assert "".join(orjson.loads(frame).get("token", "") for frame in frames) == PARTIAL
    assert stored_reply(http, owner, chat_id) == ("error", PARTIAL)


def test_orchestrator_sse_and_json_report_the_cut(http: httpx.Client) -> None:
    owner = new_account(http)
    body = {"message": "x", "model": "cut", "stream": True}
    with connect_sse(http, "POST", "/api/chat", json=body, headers=owner.bearer) as source:
        events = list(source.iter_sse())
    assert events[-1].event == "error" and all(event.event != "result" for event in events)
    assert orjson.loads(events[-1].data)["error"]["partial_text"] == PARTIAL

    whole = http.post("/api/chat", json={**body, "stream": False}, headers=owner.bearer)
    assert whole.status_code == 503 and whole.json()["code"] == "BACKEND_TRUNCATED"
    conversations = http.get("/api/conversations", headers=owner.bearer).json()["conversations"]
    for conversation in conversations:
        assert stored_reply(http, owner, int(conversation["id"])) == ("error", PARTIAL)


def test_orchestrator_websocket_gets_an_error_and_no_response(faults_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    with connect(f"ws://127.0.0.1:{faults_stack.http_port}/ws/chat?token={owner.tokens['access_token']}") as socket:
        socket.send(orjson.dumps({"message": "x", "model": "cut"}).decode())
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] not in ("error", "response"):
            frame = orjson.loads(socket.recv(timeout=10))
            if frame["type"] != "ping":
                frames.append(frame)
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "UNAVAILABLE"
    assert "".join(frame["content"] for frame in frames if frame["type"] == "token") == PARTIAL


def test_grpc_chat_reply_ends_in_error_naming_the_stored_message(faults_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    chat_id = cut_chat(http, owner)
    with grpc.insecure_channel(faults_stack.grpc_target) as channel:
        stub = chat_pb2_grpc.MessageServiceStub(channel)
        request = chat_pb2.StreamMessageRequest(chat_id=chat_id, message="x")
        metadata = (("authorization", f"Bearer {owner.tokens['access_token']}"),)
        events, error = grpc_events(stub.StreamMessage(request, metadata=metadata, timeout=30))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    failure = events[-1].error
    assert failure.partial_text == PARTIAL and failure.message_id
    assert stored_reply(http, owner, chat_id) == ("error", PARTIAL)


class TruncatingProxy:
    """Sits in front of a real OpenAI-compatible server (llama.cpp's) and passes on the first
    `keep` events of each streamed answer, then ends the body cleanly, as a proxy that drops the
    tail of a response does: no finish_reason, no [DONE], no transport error."""

    def __init__(self, upstream: str, keep: int) -> None:
        self.upstream, self.keep = upstream.rstrip("/"), keep

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ")
        length = next((int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length")), 0)
        body = await reader.readexactly(length)
        target = self.upstream + path.removeprefix("/v1")
        async with (
            httpx.AsyncClient(timeout=120) as client,
            client.stream(method, target, content=body, headers={"content-type": "application/json"}) as response,
        ):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            buffered, events = b"", 0
            async for piece in response.aiter_bytes():
                buffered += piece
                while b"\n\n" in buffered and events < self.keep:
                    event, buffered = buffered.split(b"\n\n", 1)
                    writer.write(event + b"\n\n")
                    events += 1
                if events >= self.keep:
                    break
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def truncated_llama_stack(
    openai_server: str,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    proxy = TruncatingProxy(openai_server, keep=CUT_AFTER)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(asyncio.start_server(proxy.handle, "127.0.0.1", 0), loop).result(10)
    port = server.sockets[0].getsockname()[1]
    data = tmp_path_factory.mktemp("llama-cut")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        models=[
            {
                "key": key,
                "backend": "openai",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "model_name": "gemma",
                "api": api,
            }
            for key, api in (("cut-chat", "chat"), ("cut-text", "completions"))
        ],
    )
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()

    async def close() -> None:
        server.close()
        await server.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cut-text", "cut-chat"])
def test_a_real_llama_cpp_server_cut_short_is_unavailable(truncated_llama_stack: LiveStack, model: str) -> None:
    with grpc.insecure_channel(truncated_llama_stack.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        # A base model under a chat template may end at once: the chat API gets a story to continue.
        turns = [inference_pb2.ChatTurn(role=inference_pb2.TURN_ROLE_USER, content="Once upon a time, in a")]
        request = inference_pb2.GenerateRequest(
            prompt="Once upon a time", messages=turns if model == "cut-chat" else [], model=model, max_tokens=40, seed=1
        )
        events, error = grpc_events(stub.GenerateStream(request, metadata=USER_METADATA, timeout=120))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, (events, error)
    failure = events[-1].error
    assert "without a finish_reason" in failure.message
    assert failure.partial_text == "".join(event.token.text for event in events if event.HasField("token"))
