"""Two `relais serve` processes sharing one database and the local Redis (on channels of their
own), for tests of what crosses replicas."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.ports import unused_port
from tests.test_cli import relais, wait_http


@contextlib.contextmanager
def two_replicas(tmp_path: Path, database_url: str, **extra_env: str) -> Iterator[list[str]]:
    """The two replicas' base URLs, both serving until the block ends."""
    prefix = f"test:{uuid.uuid4().hex}:"
    env = {
        "RELAIS_REDIS_URL": "redis://127.0.0.1:6379/0",
        # Channels and keys of this test only: other tests share the machine's Redis.
        "RELAIS_EVENTS_CHANNEL_PREFIX": prefix,
        "RELAIS_JOURNAL_PREFIX": prefix + "journal:",
        "RELAIS_DATABASE_URL": database_url,
        "RELAIS_LLM_PRELOAD": "false",
        "RELAIS_RETRIEVAL_PRELOAD": "false",
        # Replies are not what these tests are about: fail fast instead of running the CPU model.
        "RELAIS_MODELS": '[{"key": "down", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}]',
        "RELAIS_PLUGINS_SHIPPED": "[]",
        **extra_env,
    }
    ports = [(unused_port(), unused_port()) for _ in range(2)]
    urls = [f"http://127.0.0.1:{http_port}" for http_port, _ in ports]

    def serve(index: int) -> Any:
        http_port, grpc_port = ports[index]
        data = str(tmp_path / str(index))
        return relais(
            "serve", "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--data-dir", data, env=env
        )

    # One after the other: the first runs the migrations.
    with serve(0) as first:
        wait_http(f"{urls[0]}/openapi.json", first)
        with serve(1) as second:
            wait_http(f"{urls[1]}/openapi.json", second)
            yield urls
