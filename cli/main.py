"""The `relais` command.

relais serve                                   # gRPC :50051 + HTTP :8000, data in ./data
relais serve --only grpc --grpc-port 50051
relais serve --only bridge --upstream grpc.internal:50051 --http-port 8080
RELAIS_API_KEY=rk_... relais index data/corpus/manuals   # index corpus files, with a progress bar
RELAIS_API_KEY=rk_... relais backup export -o relais.zip   # and `relais backup import relais.zip [--apply]`
relais plugin new NAME | pack DIR -o FILE.zip --key KEY | sign FILE.zip --key KEY | keygen -o KEY
relais login && relais chat                    # and ask, models, agents, keys, users, health: see cli/commands.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cli import commands, remote
from cli.backup import backup
from cli.plugin import plugin
from cli.remote import loopback
from server.config import load_settings

app = typer.Typer(help="Relais: self-hostable AI platform service.", no_args_is_help=True, add_completion=False)
commands.register(app)


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
    from cli.serve import busy_ports, run_service
    from server.memory import tune_allocator
    from server.observability import configure_logging

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
    configure_logging(settings.log_level, settings.log_format)
    tune_allocator()
    for name, port in busy_ports(settings):
        typer.echo(
            f"error: {settings.host}:{port} is already in use; choose another with --{name} (or stop what holds it)",
            err=True,
        )
        raise typer.Exit(1)
    asyncio.run(run_service(settings))
    # Everything is stopped and closed. Leave without the interpreter's teardown: collecting every
    # module (torch, pandas, grpc...) took over two seconds on two busy cores, past the promise to
    # exit within the shutdown grace plus one second.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


admin = typer.Typer(help="Administration commands.", no_args_is_help=True)
app.add_typer(backup, name="backup")
app.add_typer(plugin, name="plugin")
app.add_typer(admin, name="admin")


@admin.command("create")
def admin_create(
    email: Annotated[str, typer.Option(prompt=True, help="The administrator's email (their login).")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (never from a flag).")
    ] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Where data lives [./data].")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL [SQLite under the data dir].")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)] = None,
) -> None:
    """Create an administrator account (the first one, or another). The password is prompted for
    (its rules are shown first) or read from standard input."""
    from cli.serve import create_admin
    from server.errors import DomainError
    from server.observability import configure_logging

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    configure_logging("WARNING")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else prompt_new_password(email)
    try:
        created = asyncio.run(create_admin(settings, email=email, password=password))
    except DomainError as error:
        details = "; ".join(f"{v.field} {v.message}" for v in getattr(error, "violations", []))
        typer.echo(f"error: {error.message}{': ' + details if details else ''}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"administrator {email} created" if created else f"an account {email} already exists; nothing changed")


def prompt_new_password(email: str) -> str:
    """Ask for a new password until it follows the rules (stated before the first prompt)."""
    from server.identity.passwords import PASSWORD_RULES, password_violations

    typer.echo(f"The password needs {PASSWORD_RULES}.")
    while True:
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        problems = password_violations(password, email=email)
        if not problems:
            return password
        typer.echo("That password " + "; ".join(p.message for p in problems) + ". Try again.", err=True)


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
    server: Annotated[str | None, typer.Option(help="The gRPC server [RELAIS_SERVER, the login's, or local].")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="RELAIS_API_KEY", help="An API key with corpus:write.")] = None,
    token: Annotated[str | None, typer.Option(envvar="RELAIS_TOKEN", help="An access token, instead of a key.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)] = None,
) -> None:
    """Index corpus files on a running server with a progress bar and an ETA; prints what changed.
    Credentials: --api-key / RELAIS_API_KEY, --token / RELAIS_TOKEN, else the `relais login` token."""
    from relais_typed.relais.v1 import ReindexRequest, ReindexResult
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    settings = load_settings(config)
    relative = corpus_relative(path, settings.corpus_path)
    metadata = [("x-api-key", api_key)] if api_key else [("authorization", f"Bearer {token}")] if token else None
    target = remote.resolve_server(server, fallback=f"{loopback(settings.host)}:{settings.grpc_port}")
    result: ReindexResult | None = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    eta = (TextColumn("ETA"), TimeRemainingColumn())
    with (
        remote.client(target, metadata=metadata) as relais,
        Progress(*columns, *eta, transient=True) as progress,
    ):
        task = progress.add_task("scanning", total=None)
        request = ReindexRequest(path=relative, full=full)
        for event in relais.retrieval.reindex(request, timeout=remote.STREAM_TIMEOUT_SECONDS):
            if event.progress is not None:
                step = event.progress
                progress.update(task, total=step.files_total, completed=step.files_done, description=step.path)
            elif event.done is not None:
                result = event.done
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
    from server.system.service import relais_version

    typer.echo(relais_version())
