"""A stack for the tasks domain, on SQLite and on PostgreSQL: a fast planner and heartbeat, the
Triton stand-in as the chat model (for llm.prompt), a corpus directory, and real accounts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, fresh_postgres_schema, stack_settings
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

FAST = {
    "tasks_refresh_seconds": 0.2,
    "tasks_heartbeat_seconds": 0.5,
    "tasks_dead_after_seconds": 2.0,
    "tasks_late_after_seconds": 3.0,
}


def task_settings(data_dir: Path, database_url: str, triton: LiveTriton, **extra: object) -> object:
    return stack_settings(
        data_dir,
        database_url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        corpus_dir=data_dir / "corpus",
        default_model="fast",
        llm_default_max_tokens=8,
        models=[{"key": "fast", "backend": "triton", "url": triton.url, "model_name": "echo"}],
        **{**FAST, **extra},
    )


@pytest.fixture(scope="session")
def task_triton() -> Iterator[LiveTriton]:
    live = LiveTriton([StandInModel(name="echo")]).start()
    yield live
    live.close()


@pytest.fixture(scope="session")
def tasks_stack(
    database_url: str, task_triton: LiveTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    # A database of its own: servers of one process on one database are replicas of one deployment,
    # and a run goes to whichever of them the engine finds first, with that server's models and
    # actions; this stack's differ from the other stacks' (its Triton model, its fast planner).
    data = tmp_path_factory.mktemp("tasks")
    with contextlib.ExitStack() as cleanup:
        if database_url.startswith("sqlite"):
            own = f"sqlite:///{data / 'relais.db'}"
        else:
            own = cleanup.enter_context(fresh_postgres_schema())
        live = LiveStack(task_settings(data, own, task_triton)).start()  # type: ignore[arg-type]
        yield live
        live.stop()


@pytest.fixture
def http(tasks_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tasks_stack.base_url, timeout=30) as client:
        yield client
