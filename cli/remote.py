"""How the CLI reaches a running server: which address, which credentials, and errors as one line.

Address: `--server`, else `RELAIS_SERVER`, else the server of `relais login`, else
127.0.0.1 on `RELAIS_GRPC_PORT` (50051). Credentials: `RELAIS_API_KEY`, else
`RELAIS_TOKEN`, else the token saved by `relais login`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import grpc
import typer
from relais_client import RelaisClient, connect

from cli import credentials

DEFAULT_TIMEOUT_SECONDS = 30.0
# A reply streams for as long as the model writes; an hour bounds a call nobody cancels.
STREAM_TIMEOUT_SECONDS = 3600.0


def loopback(host: str) -> str:
    """The address to reach a server listening on `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def default_server() -> str:
    return f"127.0.0.1:{os.environ.get('RELAIS_GRPC_PORT', '50051')}"


def resolve_server(server: str | None, *, fallback: str | None = None) -> str:
    if server:
        return server
    if os.environ.get("RELAIS_SERVER"):
        return os.environ["RELAIS_SERVER"]
    stored = credentials.load()
    return stored.server if stored else fallback or default_server()


def credential_metadata() -> list[tuple[str, str]]:
    if os.environ.get("RELAIS_API_KEY"):
        return [("x-api-key", os.environ["RELAIS_API_KEY"])]
    token = os.environ.get("RELAIS_TOKEN") or (stored.access_token if (stored := credentials.load()) else "")
    return [("authorization", f"Bearer {token}")] if token else []


@contextlib.contextmanager
def client(
    server: str | None, *, anonymous: bool = False, metadata: list[tuple[str, str]] | None = None
) -> Iterator[RelaisClient]:
    """A connected client (with `metadata` as credentials when given, else the environment's or the
    saved login's); any gRPC error inside becomes one `error: …` line and exit 1."""
    if metadata is None:
        metadata = [] if anonymous else credential_metadata()
    with (
        connect(resolve_server(server), timeout=DEFAULT_TIMEOUT_SECONDS, metadata=metadata) as opened,
        one_line_errors(),
    ):
        yield opened


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except grpc.RpcError as error:
        code = error.code()
        if code is grpc.StatusCode.UNAUTHENTICATED:
            hint = " (run `relais login`, or set RELAIS_API_KEY)"
        elif code is grpc.StatusCode.UNAVAILABLE:
            hint = " (is `relais serve` running? --server HOST:PORT names another server)"
        else:
            hint = ""
        typer.echo(f"error: {error.details()}{hint}", err=True)
        raise typer.Exit(1) from None
