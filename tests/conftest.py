"""Shared fixtures: real databases, a real Relais stack on ephemeral ports, real clients.

Every stack-backed test runs twice, on SQLite and on PostgreSQL (RELAIS_TEST_POSTGRES_URL,
default the local server CI provides). Each session gets its own PostgreSQL schema,
dropped at the end, so parallel runs do not collide.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest

from server.config import Settings
from tests.support import services
from tests.support.live import LiveStack

ADMIN_EMAIL = "admin@relais.test"
ADMIN_PASSWORD = "admin-pass-1234"
POSTGRES_URL = os.environ.get("RELAIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped at the end."""
    schema = f"relais_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    options = urllib.parse.quote(f"-csearch_path={schema}")
    yield f"{POSTGRES_URL}?options={options}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        # The task engine's (DBOS) tables, in the schema beside it (server/tasks/domain.py).
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}_dbos" CASCADE')


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'relais.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


def stack_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "grpc_port": 0,
        "http_port": 0,
        "data_dir": data_dir,
        "database_url": database_url,
        "min_free_disk_bytes": 0,
        # Generous limits: the suite makes many calls from one address. Rate-limit tests set their own.
        "rate_limit_anonymous": "100000/minute",
        "rate_limit_user": "100000/minute",
        "rate_limit_login": "100000/minute",
        "rate_limit_auth_failures": "100000/minute",
        # The local model loads on its first request: most stacks never generate.
        "llm_preload": False,
        # Milvus Lite opens on first use too: most stacks never retrieve.
        "retrieval_preload": False,
        # So does the embedding model: loading it costs the shared cores seconds.
        "embedding_preload": False,
        # No shipped plugin processes: the plugin tests install what they need.
        "plugins_shipped": [],
        # Both bridge paths run the whole suite: the SQLite stacks call the server in process
        # (as `relais serve` does), the PostgreSQL ones over the loopback channel (as a bridge
        # deployed apart does).
        "bridge_in_process": not database_url.startswith("postgresql"),
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def test_servicer() -> services.TranscodingServicer:
    return services.TranscodingServicer()


@pytest.fixture(scope="session")
def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, test_servicer: services.TranscodingServicer
) -> Iterator[LiveStack]:
    settings = stack_settings(
        tmp_path_factory.mktemp("data"),
        database_url,
        max_body_bytes=64 * 1024,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        # The FoyerGPT document's agents name these models: served by the packaged one here.
        model_aliases={"mistral-medium": "gemma3-270m", "mistral-small": "gemma3-270m"},
        # /health reports the vector store: open it at start, as a server does by default.
        retrieval_preload=True,
    )
    live = services.start_stack_with_test_service(settings, servicer=test_servicer, static_tokens=True)
    yield live
    live.stop()


@pytest.fixture
def http(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def channel(stack: LiveStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc_target) as opened:
        yield opened
