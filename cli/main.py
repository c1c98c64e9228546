"""The `relais` command.

relais serve                                   # gRPC :50051 + HTTP :8000, data in ./data
relais serve --only grpc --grpc-port 50051
relais serve --only bridge --upstream grpc.internal:50051 --http-port 8080
RELAIS_API_KEY=rk_... relais index data/corpus/manuals   # index corpus files, with a progress bar
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from bridge.app import create_app
from server.app import RelaisServer
from server.config import Settings, load_settings
from server.errors import DomainError
from server.identity import start_identity
from server.identity.bootstrap import ensure_admin
from server.observability import configure_logging
from server.ratelimit.limiter import MemoryRateLimiter
from server.storage import create_database
from server.system.service import relais_version

app = typer.Typer(help="Relais: self-hostable AI platform service.", no_args_is_help=True, add_completion=False)
log = logging.getLogger("relais")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` stops gRPC and HTTP together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


async def run_service(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM, then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    if settings.only == "bridge" and not settings.upstream:
        raise typer.BadParameter("--only bridge needs --upstream HOST:PORT")
    grpc_server = RelaisServer(settings) if settings.only in ("all", "grpc") else None
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
                    create_app(
                        upstream=upstream,
                        max_body_bytes=settings.max_body_bytes,
                        cookie_secure=settings.cookie_secure,
                        ws_ping_interval=settings.ws_ping_interval,
                        redis_url=settings.redis_url,
                    ),
                    host=settings.host,
                    port=settings.http_port,
                    log_config=None,
                    access_log=False,
                    lifespan="on",
                    timeout_graceful_shutdown=int(settings.shutdown_grace) or None,
                    server_header=False,
                )
            )
            waiters.append(asyncio.create_task(http.serve()))
            log.info("HTTP bridge on http://%s:%d → gRPC %s", settings.host, settings.http_port, upstream)
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("shutting down (grace %.0fs)", settings.shutdown_grace)
        if http is not None:
            # uvicorn stops accepting, lets in-flight requests finish, then returns.
            http.should_exit = True
            await asyncio.gather(waiters[-1], return_exceptions=True)
        if grpc_server is not None:
            await grpc_server.stop()
        for task in waiters:
            task.cancel()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (both ports).")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP bridge port [8000].")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port [50051].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where data lives [./data].")] = None,
    only: Annotated[str | None, typer.Option(help="Run only 'grpc' or only 'bridge'.")] = None,
    upstream: Annotated[str | None, typer.Option(help="gRPC server HOST:PORT for --only bridge.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL [SQLite under the data dir].")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING…")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)] = None,
) -> None:
    """Serve gRPC and the HTTP bridge in one process (or one of them with --only)."""
    try:
        settings = load_settings(
            config,
            host=host,
            http_port=http_port,
            grpc_port=grpc_port,
            data_dir=data_dir,
            only=only,
            upstream=upstream,
            database_url=database_url,
            log_level=log_level,
        )
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    configure_logging(settings.log_level)
    asyncio.run(run_service(settings))


admin = typer.Typer(help="Administration commands.", no_args_is_help=True)
app.add_typer(admin, name="admin")


@admin.command("create")
def admin_create(
    email: Annotated[str, typer.Option(prompt=True, help="The administrator's email (their login).")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
    ],
    data_dir: Annotated[Path | None, typer.Option(help="Where data lives [./data].")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL [SQLite under the data dir].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)] = None,
) -> None:
    """Create an administrator account (the first one, or another)."""
    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    configure_logging("WARNING")
    try:
        created = asyncio.run(create_admin(settings, email=email, password=password))
    except DomainError as error:
        details = "; ".join(f"{v.field} {v.message}" for v in getattr(error, "violations", []))
        typer.echo(f"error: {error.message}{': ' + details if details else ''}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"administrator {email} created" if created else f"an account {email} already exists; nothing changed")


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


def corpus_relative(path: Path, corpus_dir: Path) -> str:
    """PATH as the server names it: relative to the corpus directory, which it must be inside."""
    resolved, root = path.expanduser().resolve(), corpus_dir.resolve()
    if not resolved.is_relative_to(root):
        raise typer.BadParameter(
            f"{path} is not inside the corpus directory {root}; put the files there (or set RELAIS_CORPUS_DIR)",
            param_hint="PATH",
        )
    relative = resolved.relative_to(root).as_posix()
    return "" if relative == "." else relative


@app.command("index")
def index(
    path: Annotated[Path, typer.Argument(help="A file or folder inside the corpus directory.", exists=True)],
    full: Annotated[bool, typer.Option("--full/--incremental", help="Re-read unchanged files too.")] = False,
    server: Annotated[str | None, typer.Option(help="The gRPC server [127.0.0.1:<grpc port>].")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="RELAIS_API_KEY", help="An API key with corpus:write.")] = None,
    token: Annotated[str | None, typer.Option(envvar="RELAIS_TOKEN", help="An access token, instead of a key.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)] = None,
) -> None:
    """Index corpus files on a running server, showing progress; prints what changed."""
    import grpc
    from relais.v1 import retrieval_pb2, retrieval_pb2_grpc
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    settings = load_settings(config)
    if not (api_key or token):
        raise typer.BadParameter("needs credentials: --api-key / RELAIS_API_KEY or --token / RELAIS_TOKEN")
    relative = corpus_relative(path, settings.corpus_path)
    target = server or f"{loopback(settings.host)}:{settings.grpc_port}"
    metadata = [("x-api-key", api_key)] if api_key else [("authorization", f"Bearer {token}")]
    result = None
    with (
        grpc.insecure_channel(target) as channel,
        Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        ) as progress,
    ):
        task = progress.add_task("scanning", total=None)
        stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        try:
            for event in stub.Reindex(retrieval_pb2.ReindexRequest(path=relative, full=full), metadata=metadata):
                if event.HasField("progress"):
                    step = event.progress
                    progress.update(task, total=step.files_total, completed=step.files_done, description=step.path)
                else:
                    result = event.done
        except grpc.RpcError as error:
            typer.echo(f"error: {error.details()}", err=True)
            raise typer.Exit(1) from None
    if result is None:
        typer.echo("error: the server ended the run without a result", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"indexed {result.indexed}, unchanged {result.unchanged}, removed {result.removed}, "
        f"{result.chunks} passages in {result.seconds:.1f}s"
    )
    for failure in result.failed:
        typer.echo(f"failed {failure.path}: {failure.reason}", err=True)
    if result.failed:
        raise typer.Exit(2)


@app.command()
def version() -> None:
    """Print the Relais version."""
    typer.echo(relais_version())
