"""A stack per database with the real embedding model and a real Milvus Lite file, a corpus
directory of its own, and the Triton stand-in as its (fast) chat model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel


@pytest.fixture(scope="module")
def rag_triton() -> Iterator[LiveTriton]:
    live = LiveTriton([StandInModel(name="echo")]).start()
    yield live
    live.close()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="module")
def rag_stack(
    database_url: str, rag_triton: LiveTriton, corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    settings = stack_settings(
        tmp_path_factory.mktemp("rag"),
        database_url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        corpus_dir=corpus_dir,
        default_model="fast",
        llm_default_max_tokens=8,
        # Small passages, so short test files still make several.
        chunk_chars=200,
        chunk_overlap=40,
        models=[{"key": "fast", "backend": "triton", "url": rag_triton.url, "model_name": "echo"}],
    )
    live = services.start_stack_with_test_service(settings)
    yield live
    live.stop()


@pytest.fixture
def http(rag_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rag_stack.base_url, timeout=120) as client:
        yield client
