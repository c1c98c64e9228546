"""A real Relais stack for tests: grpc.aio server + uvicorn bridge on ephemeral ports,
running on their own event loop in a background thread, so tests can call them
with any client (sync or async) over real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.trace import TracerProvider

from bridge.bindings import contract_services
from cli.serve import _Uvicorn, bridge_app
from server.app import RelaisServer, ServiceRegistration
from server.auth import Authenticator
from server.config import Settings

T = TypeVar("T")


@dataclass
class LiveStack:
    settings: Settings
    authenticator: Authenticator | None = None
    extra_services: Sequence[ServiceRegistration] = ()
    extra_descriptors: Sequence[ServiceDescriptor] = ()
    # OpenTelemetry for both halves (None: tracing off, as in production without an OTLP endpoint).
    tracer_provider: TracerProvider | None = None
    server: RelaisServer = field(init=False)
    grpc_port: int = 0
    http_port: int = 0
    _loop: asyncio.AbstractEventLoop = field(init=False)
    _thread: threading.Thread = field(init=False)
    _http: uvicorn.Server | None = None
    _http_task: asyncio.Task[None] | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> LiveStack:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relais-live-stack", daemon=True)
        self._thread.start()
        self.run(self._start())
        return self

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the stack's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.run(self._stop())
        self.run(_cancel_leftover_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self.server = RelaisServer(
            self.settings,
            authenticator=self.authenticator,
            extra_services=self.extra_services,
            tracer_provider=self.tracer_provider,
        )
        self.grpc_port = await self.server.start()
        services = [*contract_services(), *self.extra_descriptors]
        app = bridge_app(self.settings, self.grpc_target, self.server, services, tracer_provider=self.tracer_provider)
        # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
        # and without it every response waits ~40 ms for delayed ACKs.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # An ephemeral port unless the settings name one (a stack that is its own backend needs
        # its address before it starts).
        listener.bind(("127.0.0.1", self.settings.http_port))
        self.http_port = listener.getsockname()[1]
        self._http = _Uvicorn(
            uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5, proxy_headers=False
            )
        )
        self._http_task = asyncio.get_running_loop().create_task(self._http.serve(sockets=[listener]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
            await asyncio.sleep(0.01)

    async def _stop(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        await self.server.stop(grace=1)


async def _cancel_leftover_tasks() -> None:
    """Libraries' fire-and-forget tasks (engine.io's pings) end with the stack, as asyncio.run
    would end them, instead of being destroyed pending when the loop closes."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
