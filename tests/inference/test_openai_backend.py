"""The OpenAI-compatible backend against a real server: llama.cpp's own (llama_cpp.server),
serving the packaged model in a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from relais.v1 import events_pb2, inference_pb2, inference_pb2_grpc

from server.inference.local import packaged_model
from server.ports import unused_port
from tests.conftest import stack_settings
from tests.inference.conftest import USER, USER_METADATA
from tests.support import services
from tests.support.live import LiveStack

pytestmark = pytest.mark.slow

SERVER_LOGS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("llama-server")
    model = packaged_model(workdir)
    port = unused_port()
    # llama.cpp's server, with the same AMX guard as Relais' own local backend (server/inference/cpu_buffers.py).
    start = "from server.inference.cpu_buffers import avoid_amx_buffers; import runpy; avoid_amx_buffers(); "
    start += "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
    command = [sys.executable, "-c", start, "--model", str(model), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--n_ctx", "1024", "--model_alias", "gemma"]
    log = (workdir / "server.log").open("wb")
    # To a file, not a pipe: llama.cpp logs enough to fill a pipe and block the server.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            log.close()
            raise RuntimeError(f"llama_cpp.server did not start: {(workdir / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    SERVER_LOGS[base_url] = workdir / "server.log"
    yield base_url
    process.terminate()
    process.wait(10)
    log.close()


@pytest.fixture(scope="module")
def openai_stack(openai_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("openai")
    settings = stack_settings(
        data,
        f"sqlite:///{Path(data) / 'relais.db'}",
        models=[
            {"key": "oa-chat", "backend": "openai", "base_url": openai_server, "model_name": "gemma"},
            {
                "key": "oa-text",
                "backend": "openai",
                "base_url": openai_server,
                "model_name": "gemma",
                "api": "completions",
            },
            {"key": "oa-down", "backend": "openai", "base_url": f"http://127.0.0.1:{unused_port()}/v1"},
        ],
    )
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()


def stream(stack: LiveStack, model: str, **fields: object) -> list[events_pb2.StreamEvent]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = inference_pb2.GenerateRequest(model=model, **fields)  # type: ignore[arg-type]
        return list(stub.GenerateStream(request, metadata=USER_METADATA, timeout=120))


@pytest.mark.parametrize("model", ["oa-chat", "oa-text"])
def test_tokens_stream_from_an_openai_compatible_server(openai_stack: LiveStack, model: str) -> None:
    events = stream(openai_stack, model, prompt="The capital of France is", max_tokens=8, temperature=0)
    tokens = [event.token.text for event in events if event.HasField("token")]
    assert tokens and "".join(tokens) == events[-1].final.text
    assert events[0].status.backend == "openai"
    assert events[-1].final.finish_reason in (events_pb2.FINISH_REASON_STOP, events_pb2.FINISH_REASON_LENGTH)
    assert 1 <= events[-1].usage.completion_tokens <= 8


def test_chat_turns_go_to_the_chat_api(openai_stack: LiveStack, openai_server: str) -> None:
    turns = [inference_pb2.ChatTurn(role=inference_pb2.TURN_ROLE_USER, content="Say hello")]
    events = stream(openai_stack, "oa-chat", messages=turns, max_tokens=6)
    # The packaged model is a base model: under its chat template it may well answer nothing at once.
    assert events[-1].HasField("final")
    assert "".join(event.token.text for event in events if event.HasField("token")) == events[-1].final.text
    log = (SERVER_LOGS[openai_server]).read_text()
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in log
    assert '"POST /v1/completions HTTP/1.1" 200' in log  # the completions-API model, tested above


def test_an_unreachable_server_is_a_503(openai_stack: LiveStack) -> None:
    response = httpx.post(
        f"{openai_stack.base_url}/llm/infer", json={"prompt": "x", "model": "oa-down"}, headers=USER, timeout=30
    )
    assert response.status_code == 503
    assert "OpenAI-compatible server at http://127.0.0.1:" in response.json()["detail"]
