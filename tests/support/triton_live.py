"""The Triton stand-in served from its own event loop in a background thread, so sync and
async tests alike can use it beside a LiveStack, and stop or restart it mid-test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

from tests.support.triton_standin import StandInModel, TritonStandIn

T = TypeVar("T")


class LiveTriton:
    def __init__(self, models: Iterable[StandInModel], port: int = 0) -> None:
        self._models = list(models)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="triton-stand-in", daemon=True)
        self._thread.start()
        self.standin: TritonStandIn | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self._port}"

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def start(self) -> LiveTriton:
        """Serve (again) on the same port."""
        self.standin = TritonStandIn(self._models, port=self._port)
        self._port = self.run(self.standin.start())
        return self

    def stop(self) -> None:
        if self.standin is not None:
            self.run(self.standin.stop())
            self.standin = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_idle(self, timeout: float = 5.0) -> None:
        assert self.standin is not None
        self.run(self.standin.wait_idle(timeout), timeout + 1)
