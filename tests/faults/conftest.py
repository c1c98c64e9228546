"""A stack on SQLite whose models are the Triton stand-in, with a model whose stream is cut short."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

CUT_AFTER = 3


def triton_model(key: str, url: str, served_as: str, **extra: object) -> dict[str, object]:
    return {"key": key, "backend": "triton", "url": url, "model_name": served_as, "context_window": 4096, **extra}


@pytest.fixture(scope="module")
def faults_triton() -> Iterator[LiveTriton]:
    live = LiveTriton(
        [
            StandInModel(name="echo"),
            # Three tokens, then the gRPC stream ends with status OK and no triton_final_response.
            StandInModel(name="cut", end_stream_after=CUT_AFTER),
            StandInModel(name="cut-trt", convention="tensorrtllm", end_stream_after=CUT_AFTER),
            # 16 tokens (the stack's default max_tokens) in 1.6 s: a request still running when its retry comes.
            StandInModel(name="slow", token_delay=0.1),
        ]
    ).start()
    yield live
    live.close()


@pytest.fixture(scope="module")
def faults_stack(faults_triton: LiveTriton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("faults")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        default_model="fast",
        llm_default_max_tokens=16,
        models=[
            triton_model("fast", faults_triton.url, "echo"),
            triton_model("cut", faults_triton.url, "cut"),
            triton_model("cut-trt", faults_triton.url, "cut-trt", convention="tensorrtllm"),
            triton_model("slow", faults_triton.url, "slow"),
        ],
    )
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()


@pytest.fixture
def http(faults_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=faults_stack.base_url, timeout=30) as client:
        yield client
