"""Milvus Lite in a child process: the embedded default vector store.

pymilvus would run Milvus Lite inside this process (threads behind a loopback gRPC server),
where its pure-Python search work would hold the interpreter lock that the event loop and
every token stream need, and where nothing stops it until the process exits. Run apart, it
gets a core of its own and a lifetime tied to the store's: started on first use, stopped
(gracefully, with SIGINT, which closes its write-ahead log) when the server stops, and killed
by the kernel if this process dies first.

    lite = MilvusLiteProcess(Path("data/milvus"))
    uri = await lite.start()        # "http://127.0.0.1:<port>"
    ...
    await lite.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
import time
from pathlib import Path

from server.errors import Unavailable
from server.ports import unused_port

log = logging.getLogger("relais.retrieval")

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def server_command(data_dir: Path, port: int, *, accelerated: bool = True) -> list[str]:
    """The command line of a Milvus Lite server on 127.0.0.1:`port`, keeping its data in `data_dir`:
    with lite_engine.py's search paths (`accelerated`), or Milvus Lite as released."""
    place = ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    module = "server.retrieval.lite_child" if accelerated else "milvus_lite"
    return [sys.executable, "-m", module, "server", *place]


class MilvusLiteProcess:
    def __init__(self, data_dir: Path, *, accelerated: bool = True) -> None:
        self.data_dir = data_dir
        self.accelerated = accelerated
        self._process: asyncio.subprocess.Process | None = None
        self.uri = ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> str:
        """Start the server (if it is not running) and wait until it accepts connections."""
        if self.running:
            return self.uri
        await asyncio.to_thread(self.data_dir.mkdir, parents=True, exist_ok=True)
        port = unused_port()
        log_file = await asyncio.to_thread(open, self.data_dir.parent / "milvus-lite.log", "ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *server_command(self.data_dir, port, accelerated=self.accelerated),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log_file.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise Unavailable(
                    f"Milvus Lite exited with status {self._process.returncode} at start "
                    f"(see {self.data_dir.parent / 'milvus-lite.log'})"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                self.uri = f"http://127.0.0.1:{port}"
                log.info("Milvus Lite serving %s on port %d (pid %d)", self.data_dir, port, self._process.pid)
                return self.uri
            await asyncio.sleep(0.05)
        await self.stop()
        raise Unavailable(f"Milvus Lite did not start within {START_TIMEOUT:.0f}s")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
