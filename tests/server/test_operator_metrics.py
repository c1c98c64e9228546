"""What an operator watches: one test per metric of /metrics added for operators (local-model queue
depth and wait, prompt tokens, rate-limit and authentication rejections), JSON logs, CORS origins,
and the embedding model loaded at start."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from bridge.app import create_app
from server.config import Settings
from server.inference.backend import Chunk, Finish
from server.inference.fairqueue import FairSlots
from server.observability import configure_logging
from server.retrieval.domain import RetrievalDomain
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.inference.test_service import ScriptedBackend, request, service
from tests.support.live import LiveStack


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("limited")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        rate_limit_anonymous="5/minute",
        rate_limit_login="2/minute",
        # The tests name their client addresses in X-Forwarded-For, as a proxy on loopback would.
        trusted_proxies=["127.0.0.1"],
    )
    stack = LiveStack(settings).start()
    yield stack
    stack.stop()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of /metrics' text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def scrape(stack: LiveStack) -> str:
    return httpx.get(f"{stack.base_url}/metrics").text


def test_anonymous_calls_past_the_limit_count_as_rate_limit_rejections(limited: LiveStack) -> None:
    before = metric(scrape(limited), "relais_rate_limit_rejections_total", tier="anonymous")

    statuses = [httpx.get(f"{limited.base_url}/api/models", headers={"x-forwarded-for": "203.0.113.9"}).status_code
                for _ in range(8)]  # fmt: skip

    refused = statuses.count(429)
    assert refused >= 3
    after = metric(scrape(limited), "relais_rate_limit_rejections_total", tier="anonymous")
    assert after - before == refused


def test_sign_ins_past_the_login_limit_count_under_their_own_tier(limited: LiveStack) -> None:
    before = metric(scrape(limited), "relais_rate_limit_rejections_total", tier="login")
    body = {"email": "nobody@relais.test", "password": "wrong-password"}

    address = {"x-forwarded-for": "203.0.113.10"}
    statuses = [httpx.post(f"{limited.base_url}/auth/login", json=body, headers=address).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]
    assert metric(scrape(limited), "relais_rate_limit_rejections_total", tier="login") - before == 1


def test_refused_credentials_and_permissions_count_as_auth_rejections(limited: LiveStack) -> None:
    labels = {"grpc_service": "relais.v1.AuthService", "grpc_method": "GetMe", "grpc_code": "UNAUTHENTICATED"}
    denied = {
        "grpc_service": "relais.v1.AdminUserService",
        "grpc_method": "ListUsers",
        "grpc_code": "PERMISSION_DENIED",
    }
    text = scrape(limited)
    before = metric(text, "relais_auth_rejections_total", **labels)
    before_denied = metric(text, "relais_auth_rejections_total", **denied)
    # An address of its own: the anonymous limit of this stack is small.
    with httpx.Client(base_url=limited.base_url, headers={"x-forwarded-for": "203.0.113.20"}) as http:
        http.post("/auth/register", json={"email": "ops-metrics@relais.test", "password": "a-long-password-1"})
        token = http.post("/auth/login", json={"email": "ops-metrics@relais.test", "password": "a-long-password-1"})
        user = {"authorization": f"Bearer {token.json()['access_token']}"}

        assert http.get("/auth/me", headers={"authorization": "Bearer forged"}).status_code == 401
        assert http.get("/admin/users", headers=user).status_code == 403

    text = scrape(limited)
    assert metric(text, "relais_auth_rejections_total", **labels) - before == 1
    assert metric(text, "relais_auth_rejections_total", **denied) - before_denied == 1


def test_the_websocket_status_is_the_handshake_outcome(limited: LiveStack) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = limited.base_url.replace("http://", "ws://") + "/ws/chat"
    with (
        pytest.raises(InvalidStatus),
        connect(f"{url}?token=forged", additional_headers={"x-forwarded-for": "203.0.113.30"}),
    ):
        pass

    text = scrape(limited)
    assert metric(text, "relais_http_requests_total", method="WS", route="/ws/chat", status="401") >= 1
    assert metric(text, "relais_http_requests_total", method="WS", route="/ws/chat", status="500") == 0


async def test_the_local_queue_reports_its_depth_and_each_wait() -> None:
    from prometheus_client import REGISTRY

    def depth() -> float | None:
        return REGISTRY.get_sample_value("relais_llm_queue_depth", {"model": "queue-test"})

    def waits() -> float:
        return REGISTRY.get_sample_value("relais_llm_queue_wait_seconds_count", {"model": "queue-test"}) or 0.0

    slots = FairSlots(1, max_waiting=4, model="queue-test")
    held = await slots.acquire("a")
    queued = [asyncio.create_task(slots.acquire(caller)) for caller in ("b", "c")]
    await asyncio.sleep(0.05)
    assert depth() == 2 and waits() == 1  # the first got its slot at once

    slots.release(held)
    second = await queued[0]
    assert depth() == 1 and waits() == 2
    slots.release(second)
    slots.release(await queued[1])

    assert depth() == 0 and waits() == 3
    slow = REGISTRY.get_sample_value("relais_llm_queue_wait_seconds_bucket", {"model": "queue-test", "le": "0.01"})
    assert slow is not None and slow < 3  # the queued ones waited ≥ 50 ms


async def test_prompt_tokens_are_counted_per_model() -> None:
    from prometheus_client import REGISTRY

    class PromptCounting(ScriptedBackend):
        kind = "counting"

        async def stream(self, request: Any) -> AsyncIterator[Chunk]:
            yield Chunk(text="a", tokens=1, prompt_tokens=17)
            yield Chunk(text="b", tokens=1, prompt_tokens=17, finish=Finish.STOP)

    labels = {"model": "prompt-test", "backend": "counting"}
    before = REGISTRY.get_sample_value("relais_llm_prompt_tokens_total", labels) or 0.0
    generation = await service(("prompt-test", PromptCounting(), 4096)).start(request(max_tokens=8), "prompt-test")
    _ = [chunk async for chunk in generation.chunks()]

    assert REGISTRY.get_sample_value("relais_llm_prompt_tokens_total", labels) == before + 17


def test_json_logs_are_one_object_per_line_with_credentials_masked() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("relais.test").info("signed in with Authorization: Bearer abc.def.ghi request_id=%s", "r1")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])

    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["level"] == "INFO" and line["logger"] == "relais.test" and "time" in line
    assert "abc.def.ghi" not in line["message"] and "***" in line["message"]
    assert line["message"].endswith("request_id=r1")


async def test_cors_allows_only_the_configured_origins() -> None:
    def preflight(app: Any, origin: str) -> Any:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://relais") as client:
                return await client.options(
                    "/api/models",
                    headers={"origin": origin, "access-control-request-method": "GET",
                             "access-control-request-headers": "authorization"},
                )  # fmt: skip

        return call()

    closed = create_app(upstream="127.0.0.1:1")
    opened = create_app(upstream="127.0.0.1:1", cors_origins=["https://app.example.com"])

    assert "access-control-allow-origin" not in (await preflight(closed, "https://app.example.com")).headers
    allowed = await preflight(opened, "https://app.example.com")
    refused = await preflight(opened, "https://evil.example.net")
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in refused.headers


def test_cors_origins_come_from_a_list_and_never_allow_everyone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_CORS_ORIGINS", "https://a.example.com, http://localhost:5173/")
    assert Settings().cors_origins == ("https://a.example.com", "http://localhost:5173")
    assert Settings().model_copy().cors_origins and Settings.model_fields["cors_origins"].default == ()
    for refused in ("*", "a.example.com", "https://a.example.com/app"):
        monkeypatch.setenv("RELAIS_CORS_ORIGINS", refused)
        with pytest.raises(ValidationError):
            Settings()


async def test_the_embedding_model_is_loaded_in_the_background_at_start() -> None:
    loaded = asyncio.Event()

    class Embedder:
        dimension = 3

        async def embed(self, texts: list[str]) -> np.ndarray:
            await asyncio.sleep(0.05)
            loaded.set()
            return np.zeros((len(texts), 3), dtype=np.float32)

    knowledge = SimpleNamespace(close=lambda: asyncio.sleep(0))
    domain = RetrievalDomain(knowledge, SimpleNamespace(), Embedder())  # type: ignore[arg-type]

    domain.preload_embedder()  # returns at once: the server answers meanwhile
    assert not loaded.is_set()
    await asyncio.wait_for(loaded.wait(), 5)
    await domain.close()


@pytest.mark.slow
async def test_the_local_embedding_model_preloads_in_a_background_thread() -> None:
    import threading

    from server.retrieval.embeddings import LocalEmbedder, _load_local, _load_short_encoder

    # threads=1: a cache key of its own, so this loads even when another test loaded the model.
    embedder = LocalEmbedder(threads=1)
    loaded_before, short_before = _load_local.cache_info().currsize, _load_short_encoder.cache_info().currsize

    embedder.preload()
    loader = next(t for t in threading.enumerate() if t.name == "relais-embed-preload")
    assert loader.daemon  # never holds the server's exit
    await asyncio.to_thread(loader.join, 240)

    assert _load_local.cache_info().currsize == loaded_before + 1
    assert _load_short_encoder.cache_info().currsize == short_before + 1  # a query's ONNX export too
    hits_before = _load_short_encoder.cache_info().hits
    assert (await embedder.embed(["ready"])).shape == (1, 384)
    assert _load_short_encoder.cache_info().hits == hits_before + 1  # the search used the preloaded model
    await embedder.close()
