"""What `relais serve` and `relais admin create` run: the server's and the bridge's code, imported
only by those commands so that the client commands (login, chat, models…) start quickly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI
from google.protobuf.descriptor import ServiceDescriptor
from opentelemetry.trace import TracerProvider

from bridge.app import create_app
from cli.remote import loopback
from cli.telemetry import tracer_provider_from_environment
from server.app import RELEASE_TIMEOUT, RelaisServer
from server.config import Settings
from server.identity import start_identity
from server.identity.bootstrap import ensure_admin
from server.memory import settle
from server.ratelimit.limiter import MemoryRateLimiter
from server.storage import create_database

log = logging.getLogger("relais")


def bridge_app(
    settings: Settings,
    upstream: str,
    server: RelaisServer | None,
    services: Sequence[ServiceDescriptor] | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The HTTP bridge of `settings`, calling `server` in this process when there is one
    (and settings.bridge_in_process), else the gRPC server at `upstream`."""
    return create_app(
        upstream=upstream,
        max_body_bytes=settings.max_body_bytes,
        cookie_secure=settings.cookie_secure,
        services=services,
        ws_ping_interval=settings.ws_ping_interval,
        sse_keepalive=settings.ws_ping_interval,
        tracer_provider=tracer_provider,
        cors_origins=settings.cors_origins,
        in_process=server if server is not None and settings.bridge_in_process else None,
        trusted_proxies=sorted(settings.trusted_proxies),
        bridge_secret=bridge_secret(settings, server),
    )


def bridge_secret(settings: Settings, server: RelaisServer | None) -> str | None:
    """The secret the bridge vouches for client addresses with: its own server's, or the configured one."""
    if server is not None:
        return server.bridge_secret
    if settings.bridge_secret is None:
        log.warning("no RELAIS_BRIDGE_SECRET: the server sees this bridge's address, not its clients'")
        return None
    return settings.bridge_secret.get_secret_value()


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` stops gRPC and HTTP together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# Seconds `relais main` takes to leave once the service has stopped (logs flushed, os._exit).
EXIT_MARGIN = 0.4


class _UnjoinedExecutor(ThreadPoolExecutor):
    """The loop's default executor (asyncio.to_thread). asyncio.run joins it on the way out; a
    dependency left closing on its own in one of its threads (DBOS stopping, Milvus Lite) must
    not hold the exit past the shutdown grace plus a second, so shutting down does not wait."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> Any:
        return super().shutdown(wait=False, cancel_futures=True)


async def run_service(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM, then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(_UnjoinedExecutor(thread_name_prefix="relais-io"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    if settings.only == "bridge" and not settings.upstream:
        raise typer.BadParameter("--only bridge needs --upstream HOST:PORT")
    tracer_provider = tracer_provider_from_environment()
    grpc_server = RelaisServer(settings, tracer_provider=tracer_provider) if settings.only in ("all", "grpc") else None
    http: _Uvicorn | None = None
    waiters: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
    try:
        if grpc_server is not None:
            port = await grpc_server.start()
            waiters.append(asyncio.create_task(grpc_server.wait_for_termination()))
        if settings.only in ("all", "bridge"):
            upstream = settings.upstream or f"{loopback(settings.host)}:{port}"
            http = _Uvicorn(
                uvicorn.Config(
                    bridge_app(settings, upstream, grpc_server, tracer_provider=tracer_provider),
                    host=settings.host,
                    port=settings.http_port,
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                    # With the gRPC server here, its drain has ended every stream before uvicorn stops:
                    # what is left (a stream's last frames, idle keep-alives) takes no time.
                    timeout_graceful_shutdown=1 if grpc_server else (math.ceil(settings.shutdown_grace) or None),
                    server_header=False,
                    # The bridge reads X-Forwarded-For itself, from the configured proxies only.
                    proxy_headers=False,
                )
            )
            waiters.append(asyncio.create_task(http.serve()))
            log.info("HTTP bridge on http://%s:%d → gRPC %s", settings.host, settings.http_port, upstream)
        # What exists now lives as long as the process: out of the garbage collector's way.
        settle()
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("shutting down (grace %.1fs)", settings.shutdown_grace)
        # The promise: exit within the grace plus a second (what is still closing then is left
        # to finish on its own), less what leaving the interpreter takes.
        deadline = loop.time() + settings.shutdown_grace + 1 - EXIT_MARGIN
        if grpc_server is not None:
            # The bridge keeps serving meanwhile: /health says "draining", other calls get a 503, and
            # every stream's terminal event goes out before the bridge stops.
            await grpc_server.drain()
        if http is not None:
            # uvicorn stops accepting, lets in-flight requests finish, then returns.
            http.should_exit = True
            await asyncio.gather(waiters[-1], return_exceptions=True)
        if grpc_server is not None:
            await grpc_server.stop(release_timeout=max(RELEASE_TIMEOUT, deadline - loop.time()))
        for task in waiters:
            task.cancel()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # exports the spans still batched


def busy_ports(settings: Settings) -> list[tuple[str, int]]:
    """The ports `serve` would bind that something else holds: one clear line beats a
    traceback from deep inside grpc or uvicorn (a port taken just after this check still fails there)."""
    wanted = []
    if settings.only in ("all", "grpc"):
        wanted.append(("grpc-port", settings.grpc_port))
    if settings.only in ("all", "bridge"):
        wanted.append(("http-port", settings.http_port))
    busy = []
    for name, port in wanted:
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((settings.host, port))
            except OSError:
                busy.append((name, port))
    return busy


async def create_admin(settings: Settings, *, email: str, password: str) -> bool:
    database = create_database(settings.sqlalchemy_url)
    limiter = MemoryRateLimiter()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await database.migrate()
        identity = await start_identity(settings, database, limiter)
        return await ensure_admin(identity.service, database, email=email, password=password)
    finally:
        await database.dispose()
