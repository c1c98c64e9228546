"""A stack per database whose default model is the Triton stand-in (replies in milliseconds),
with a model that fails mid-reply."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel


@pytest.fixture(scope="module")
def chat_triton() -> Iterator[LiveTriton]:
    live = LiveTriton(
        [
            StandInModel(name="echo"),
            StandInModel(name="broken", fail_after=3),
            # Slow enough (16 tokens, 3.2 s) that a client leaving after a few tokens always beats its end.
            StandInModel(name="slow", token_delay=0.2),
            # A model that keeps each request waiting about a second per token, as a busy queue does.
            StandInModel(name="queued", token_delay=1.0),
        ]
    ).start()
    yield live
    live.close()


@pytest.fixture(scope="module")
def chat_stack(
    database_url: str, chat_triton: LiveTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    def model(key: str, served_as: str, window: int = 4096) -> dict[str, object]:
        return {
            "key": key,
            "backend": "triton",
            "url": chat_triton.url,
            "model_name": served_as,
            "context_window": window,
        }

    settings = stack_settings(
        tmp_path_factory.mktemp("chats"),
        database_url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        default_model="fast",
        llm_default_max_tokens=16,
        ws_ping_interval=0.2,
        models=[model("fast", "echo"), model("broken", "broken"), model("slow", "slow"), model("queued", "queued")],
        model_aliases={"mistral-medium": "fast", "mistral-small": "fast"},
    )
    live = services.start_stack_with_test_service(settings)
    yield live
    live.stop()


@pytest.fixture
def http(chat_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chat_stack.base_url, timeout=30) as client:
        yield client
