"""A Relais stack that runs plugins (SQLite; the replica test uses PostgreSQL), an Ed25519 key it
trusts, and the hello plugin packed and signed with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.plugins.signing import generate_key, public_key_text
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.plugins.support import HELLO, packed
from tests.support import services
from tests.support.live import LiveStack

ADMIN = {"Authorization": "Bearer admin-token"}
USER = {"Authorization": "Bearer user-token"}


@pytest.fixture(scope="session")
def plugin_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plugin runtime for the session's stacks (it is the same for all)."""
    return tmp_path_factory.mktemp("plugin-runtime")


@pytest.fixture(scope="session")
def hello_bundle(plugin_key: Ed25519PrivateKey) -> bytes:
    return packed(HELLO, plugin_key)


def plugin_stack(
    tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path, key: Ed25519PrivateKey, **overrides: object
) -> LiveStack:
    data_dir = tmp_path_factory.mktemp("plugins-data")
    settings = stack_settings(
        data_dir,
        f"sqlite:///{data_dir / 'relais.db'}",
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        plugins_trusted_keys=public_key_text(key.public_key()),
        plugins_runtime_dir=runtime_dir,
        **{"plugins_start_timeout": 60.0, **overrides},
    )
    return services.start_stack_with_test_service(settings, static_tokens=True)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path, plugin_key: Ed25519PrivateKey
) -> Iterator[LiveStack]:
    live = plugin_stack(tmp_path_factory, runtime_dir, plugin_key)
    yield live
    live.stop()


@pytest.fixture
def http(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=120, headers=ADMIN) as client:
        yield client


@pytest.fixture
def hello(http: httpx.Client, hello_bundle: bytes) -> Iterator[dict[str, object]]:
    """hello, installed and enabled (and removed afterwards)."""
    assert http.post("/plugins/upload", files={"file": ("hello.zip", hello_bundle)}).status_code == 201
    enabled = http.post("/plugins/hello/enable")
    assert enabled.status_code == 200 and enabled.json()["state"] == "running", enabled.text
    yield enabled.json()
    http.delete("/plugins/hello")
