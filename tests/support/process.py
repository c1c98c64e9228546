"""`relais serve` as a real child process, for tests that signal, stop or measure it.

with RelaisProcess(tmp_path, RELAIS_SHUTDOWN_GRACE="3", RELAIS_MODELS=json.dumps([...])) as relais:
    httpx.get(f"{relais.base_url}/health")
    relais.process.send_signal(signal.SIGTERM)
    relais.rss_bytes()
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from server.ports import unused_port
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0
# The child's settings unless a test gives others: generous rate limits, nothing loaded up front.
DEFAULTS = {
    "RELAIS_ADMIN_EMAIL": ADMIN_EMAIL,
    "RELAIS_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "RELAIS_RATE_LIMIT_ANONYMOUS": "1000000/minute",
    "RELAIS_RATE_LIMIT_USER": "1000000/minute",
    "RELAIS_RATE_LIMIT_ADMIN": "1000000/minute",
    "RELAIS_RATE_LIMIT_LOGIN": "1000000/minute",
    "RELAIS_LLM_PRELOAD": "false",
    "RELAIS_RETRIEVAL_PRELOAD": "false",
    "RELAIS_MIN_FREE_DISK_BYTES": "0",
}


class RelaisProcess:
    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.data_dir = data_dir
        self.http_port = unused_port()
        self.grpc_port = unused_port()
        self.log_path = data_dir / "relais.log"
        self._settings = {**DEFAULTS, **settings}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> RelaisProcess:
        environment = {key: value for key, value in os.environ.items() if not key.startswith("RELAIS_")}
        environment["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("", "gen/python", "clients/python"))
        environment.update(self._settings)
        command = [sys.executable, "-c", "from cli.main import app; app()", "serve", "--host", "127.0.0.1"]
        command += ["--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port)]
        command += ["--data-dir", str(self.data_dir)]
        self._log = self.log_path.open("ab")
        # To a file, not a pipe: a pipe nobody reads fills up and blocks the server.
        self.process = subprocess.Popen(command, env=environment, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"relais serve exited with {self.process.returncode}: {self.log()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code in (200, 503):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"relais serve did not start: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from /proc."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> RelaisProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
