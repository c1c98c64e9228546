"""A stack serving OpenAI's API: Triton stand-in models (fast, scriptable: one writes tool calls),
the real packaged Gemma (loaded on first use), and models whose backend is this very server
(`loopback`, through its own /v1/chat/completions; `ouroboros`, which names itself: the loop guard).

The stack runs on SQLite and on PostgreSQL (the usage counts are an upsert of each dialect)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from server.ports import unused_port
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.identity.helpers import Account, new_account
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel, default_tokens

# What the stand-in's "tooly" model answers when asked for a tool call, by tool.
ARGUMENTS = {"calculator": {"expression": "6 * 7"}, "get_weather": {"city": "Paris"}}


def tool_script(prompt: str, max_tokens: int) -> list[str]:
    """A model that calls the first tool the prompt offers, and answers with the tool's result once
    it has one (the transcript's last line is a tool's)."""
    if "To call a tool" in prompt:
        offered = prompt.split("You can use these tools.\n- ", 1)[1].split(":", 1)[0]
        return [json.dumps({"tool": offered, "arguments": ARGUMENTS.get(offered, {})})]
    last = prompt.rstrip().removesuffix("Assistant:").rstrip().rsplit("\n", 1)[-1]
    if last.startswith("Tool ("):
        return ["The ", "tool ", "says: ", last.split("): ", 1)[1]]
    return default_tokens(prompt, max_tokens)


@pytest.fixture(scope="module")
def triton() -> Iterator[LiveTriton]:
    live = LiveTriton(
        [
            StandInModel(name="echo"),
            StandInModel(name="tooly", tokens=tool_script),
            # Answers with the prompt it was given (its lines joined by " | ", past the turn-marker
            # stop strings): what the model reads, visible to the test.
            StandInModel(name="parrot", tokens=lambda prompt, max_tokens: [prompt.replace("\n", " | ")]),
            StandInModel(name="slow", token_delay=0.05),
            StandInModel(name="broken", fail_after=2, error_text="CUDA out of memory"),
            StandInModel(name="ensemble", convention="tensorrtllm"),
        ]
    ).start()
    yield live
    live.close()


def models(triton_url: str, http_port: int) -> list[dict[str, Any]]:
    def stand_in(key: str, served_as: str, **extra: Any) -> dict[str, Any]:
        return {"key": key, "backend": "triton", "url": triton_url, "model_name": served_as, **extra}

    # The static test token: this server calling itself authenticates as the test "user".
    itself = {"backend": "openai", "base_url": f"http://127.0.0.1:{http_port}/v1", "api_key": "user-token"}
    return [
        stand_in("fast", "echo", context_window=8192, provider="Stand-in"),
        stand_in("tooly", "tooly", context_window=8192),
        stand_in("parrot", "parrot", context_window=8192),
        stand_in("slow", "slow", context_window=8192),
        stand_in("broken", "broken", context_window=8192),
        stand_in("trt", "ensemble", convention="tensorrtllm", context_window=8192),
        {"key": "gemma3-270m", "backend": "local", "context_window": 2048, "provider": "Google"},
        {"key": "loopback", "model_name": "fast", **itself},
        {"key": "loopback-text", "model_name": "fast", "api": "completions", **itself},
        {"key": "ouroboros", "model_name": "ouroboros", **itself},
    ]


@pytest.fixture(scope="module")
def openai_stack(
    triton: LiveTriton, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    port = unused_port()
    settings = stack_settings(
        tmp_path_factory.mktemp("openai"),
        database_url,
        http_port=port,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        default_model="fast",
        models=models(triton.url, port),
        llm_parallel=1,
    )
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()


@pytest.fixture
def http(openai_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=openai_stack.base_url, timeout=120) as client:
        yield client


@pytest.fixture
def user(http: httpx.Client) -> Account:
    return new_account(http)


def api_key(http: httpx.Client, account: Account) -> str:
    created = http.post("/api/keys", headers=account.bearer, json={"name": "openai-sdk"})
    assert created.status_code in (200, 201), created.text
    return str(created.json()["key"])


@pytest.fixture
def key(http: httpx.Client, user: Account) -> str:
    """An API key of `user`, which OpenAI's clients send as a bearer token."""
    return api_key(http, user)
