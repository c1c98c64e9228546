"""A Relais stack whose models are served by the Triton stand-in (fast, scriptable), plus
the real local model (loaded on first use) and backends that are broken on purpose."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

import grpc
import httpx
import pytest
from relais.v1 import inference_pb2_grpc

from server.ports import unused_port
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

# Read-only: httpx_sse's connect_sse writes its Accept header into the dict it is given, which
# turned every later request with USER into a request for server-sent events. Give it dict(USER).
USER: Mapping[str, str] = MappingProxyType({"authorization": "Bearer user-token"})
USER_METADATA = (("authorization", "Bearer user-token"),)


def wide_tokens(prompt: str, max_tokens: int) -> list[str]:
    return [f"{index:05d}" + "x" * 1019 for index in range(max_tokens)]


@pytest.fixture(scope="module")
def triton() -> Iterator[LiveTriton]:
    live = LiveTriton(
        [
            StandInModel(name="echo"),
            StandInModel(name="slow", token_delay=0.02),
            StandInModel(name="held", hold_after=3),
            StandInModel(name="broken", fail_after=3, error_text="CUDA out of memory"),
            StandInModel(name="ensemble", convention="tensorrtllm"),
            # 1 KiB tokens: a few hundred fill gRPC's flow-control window.
            StandInModel(name="wide", tokens=wide_tokens),
        ]
    ).start()
    yield live
    live.close()


@pytest.fixture(scope="module")
def late_triton() -> Iterator[LiveTriton]:
    """A Triton that is down until a test starts it."""
    live = LiveTriton([StandInModel(name="echo")], port=unused_port())
    yield live
    live.close()


def triton_model(key: str, url: str, served_as: str, **extra: object) -> dict[str, object]:
    return {"key": key, "backend": "triton", "url": url, "model_name": served_as, "context_window": 4096, **extra}


@pytest.fixture(scope="module")
def llm_stack(
    triton: LiveTriton, late_triton: LiveTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("llm")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        default_model="fast",
        models=[
            triton_model("fast", triton.url, "echo", name="Echo on Triton"),
            triton_model("slow", triton.url, "slow"),
            triton_model("held", triton.url, "held"),
            triton_model("broken", triton.url, "broken"),
            triton_model("trt", triton.url, "ensemble", convention="tensorrtllm"),
            triton_model("wide", triton.url, "wide"),
            triton_model("missing", triton.url, "not-deployed"),
            triton_model("late", late_triton.url, "echo"),
            {"key": "gemma3-270m", "backend": "local", "context_window": 2048, "provider": "Google"},
        ],
    )
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()


@pytest.fixture
def http(llm_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_stack.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def inference(llm_stack: LiveStack) -> Iterator[inference_pb2_grpc.InferenceServiceStub]:
    with grpc.insecure_channel(llm_stack.grpc_target) as channel:
        yield inference_pb2_grpc.InferenceServiceStub(channel)
