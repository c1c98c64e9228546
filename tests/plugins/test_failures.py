"""Plugins that misbehave: one that crashes, one that hangs at start, one that floods its log,
one that exceeds its memory limit. Each ends `failed` with its last error after the allowed
restarts; Relais, and the other plugins, keep serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.plugins.conftest import ADMIN, plugin_stack
from tests.plugins.support import packed, upload, wait_until, write_plugin
from tests.support.live import LiveStack

SERVE = "from relais_plugin import Plugin\nplugin = Plugin()\n"
CALM = SERVE + ("@plugin.action('ping')\nasync def ping(params, caller):\n    return 'pong'\n\nplugin.run()\n")
CALM_TOML = '[[actions]]\nname = "ping"\ndescription = "Answers pong"\n'
MISBEHAVING = {
    # Serves, then dies two seconds later, every time.
    "crasher": "import os, threading\nthreading.Timer(2.0, lambda: os._exit(3)).start()\n" + SERVE + "plugin.run()\n",
    # Never gets to its handshake.
    "hanger": "import time\ntime.sleep(3600)\n",
    # Writes to stderr as fast as it can once started.
    "flooder": (
        "import sys, threading\n"
        "def flood():\n    while True:\n        sys.stderr.write('x' * 1000 + '\\n')\n"
        "threading.Thread(target=flood, daemon=True).start()\n" + SERVE + "plugin.run()\n"
    ),
    # Allocates twice its memory limit.
    "hog": "blob = bytearray(1024 * 1024 * 1024)\n" + SERVE + "plugin.run()\n",
}
EXPECTED = {
    "crasher": "exited with status 3",
    "hanger": "did not print its handshake line within the start timeout",
    "flooder": "faster than the limit allows",
    "hog": "MemoryError",
}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, runtime_dir: Path, plugin_key: Ed25519PrivateKey
) -> Iterator[LiveStack]:
    live = plugin_stack(
        tmp_path_factory,
        runtime_dir,
        plugin_key,
        plugins_start_timeout=6.0,
        plugins_max_restarts=1,
        plugins_restart_backoff=0.1,
        plugins_log_rate_bytes=64 * 1024,
        plugins_log_lines=200,
        plugins_memory_limit_mb=512,
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def calm(stack: LiveStack, plugin_key: Ed25519PrivateKey, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A well-behaved plugin, running beside the others."""
    folder = write_plugin(tmp_path_factory.mktemp("calm") / "calm", "calm", CALM, toml=CALM_TOML)
    with httpx.Client(base_url=stack.base_url, headers=ADMIN, timeout=60) as http:
        assert upload(http, packed(folder, plugin_key)).status_code == 201
        assert http.post("/plugins/calm/enable").json()["state"] == "running"


@pytest.mark.slow
@pytest.mark.parametrize("plugin_id", list(MISBEHAVING))
@pytest.mark.usefixtures("calm")
def test_a_misbehaving_plugin_ends_failed_and_relais_keeps_serving(
    plugin_id: str, stack: LiveStack, http: httpx.Client, plugin_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    folder = write_plugin(tmp_path / plugin_id, plugin_id, MISBEHAVING[plugin_id])
    assert upload(http, packed(folder, plugin_key)).status_code == 201

    http.post(f"/plugins/{plugin_id}/enable")
    failed = wait_until(lambda: _failed(http, plugin_id), timeout=90)

    assert EXPECTED[plugin_id] in failed["error"], failed["error"]
    assert failed["active"] is False and failed["restarts"] >= 1
    stats = http.get(f"/admin/plugins/{plugin_id}/stats").json()
    assert (stats["state"], stats["pid"], stats["restarts"]) == ("failed", 0, failed["restarts"])
    logs = http.get(f"/admin/plugins/{plugin_id}/logs", params={"tail": 1000}).json()
    assert len(logs["lines"]) <= 200 and any(line["text"].startswith("failed: ") for line in logs["lines"])
    assert http.get("/health").status_code == 200
    assert http.get("/system/plugins/calm").json()["state"] == "running"
    assert stack.server.plugins is not None
    [ping] = [action for action in stack.server.plugins.actions() if action.name == "calm.ping"]
    from server.auth import Principal

    assert stack.run(ping.run({}, Principal(subject="user:1", user_id=1))) == "pong"


def _failed(http: httpx.Client, plugin_id: str) -> dict[str, Any] | None:
    plugin: dict[str, Any] = http.get(f"/system/plugins/{plugin_id}").json()
    return plugin if plugin["state"] == "failed" else None


@pytest.mark.slow
def test_a_failed_plugin_starts_again_when_asked(
    stack: LiveStack, http: httpx.Client, plugin_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    """`failed` is not final: start tries again (with a fresh restart budget)."""
    marker = tmp_path / "healthy"
    main = (
        f"import os, sys, time\nif not os.path.exists({str(marker)!r}):\n    sys.exit(4)\n" + SERVE + "plugin.run()\n"
    )
    folder = write_plugin(tmp_path / "phoenix", "phoenix", main)
    assert upload(http, packed(folder, plugin_key)).status_code == 201
    http.post("/plugins/phoenix/enable")
    failed = wait_until(lambda: _failed(http, "phoenix"), timeout=60)
    assert "status 4" in failed["error"]

    marker.touch()
    started = http.post("/plugins/phoenix/start").json()

    assert (started["state"], started["error"]) == ("running", "")
