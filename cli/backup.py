"""`relais backup export|import`: the BackupService of a running server, with a progress bar.

RELAIS_API_KEY=rls_... relais backup export -o relais.zip
RELAIS_API_KEY=rls_... relais backup import relais.zip            # the plan only (dry run)
RELAIS_API_KEY=rls_... relais backup import relais.zip --apply --policy replace
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format

from server.config import load_settings

backup = typer.Typer(help="Export and import backups of a running server (administrators).", no_args_is_help=True)

ServerOption = Annotated[str | None, typer.Option(help="The gRPC server [127.0.0.1:<grpc port>].")]
KeyOption = Annotated[str | None, typer.Option(envvar="RELAIS_API_KEY", help="An administrator's API key.")]
TokenOption = Annotated[str | None, typer.Option(envvar="RELAIS_TOKEN", help="An access token, instead of a key.")]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML settings file (also RELAIS_CONFIG).", exists=True)]
# An archive is sent in pieces of this size (see relais.options.v1.UploadedFile).
PIECE = 1024 * 1024


def _connect(server: str | None, api_key: str | None, token: str | None, config: Path | None) -> tuple[Any, Any]:
    import grpc
    from relais.v1 import backup_pb2_grpc

    from cli.remote import loopback

    if not (api_key or token):
        raise typer.BadParameter("needs credentials: --api-key / RELAIS_API_KEY or --token / RELAIS_TOKEN")
    settings = load_settings(config)
    target = server or f"{loopback(settings.host)}:{settings.grpc_port}"
    channel = grpc.insecure_channel(target)
    metadata = [("x-api-key", api_key)] if api_key else [("authorization", f"Bearer {token}")]
    return channel, (backup_pb2_grpc.BackupServiceStub(channel), metadata)


def _progress(unit: str) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn(unit), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    return Progress(*columns, transient=True)


def _requests(archive: Path, first: Any, sent: Any) -> Iterator[Any]:
    """The import's messages: the options with the file's first piece, then each next piece."""
    from relais.v1 import backup_pb2

    with open(archive, "rb") as handle:
        first.file.data = handle.read(PIECE)
        sent(len(first.file.data))
        yield first
        while piece := handle.read(PIECE):
            sent(len(piece))
            yield backup_pb2.ImportBackupRequest(file={"data": piece})


@backup.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the ZIP.")] = Path("relais-backup.zip"),
    without_logs: Annotated[bool, typer.Option(help="Leave the logs out.")] = False,
    server: ServerOption = None,
    api_key: KeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
) -> None:
    """Download a backup archive of the server, showing the bytes received."""
    import grpc
    from relais.v1 import backup_pb2

    channel, (stub, metadata) = _connect(server, api_key, token, config)
    partial = output.with_name(output.name + ".part")
    try:
        with channel, _progress("exporting") as progress, open(partial, "wb") as handle:
            task = progress.add_task("export", total=None)
            request = backup_pb2.ExportBackupRequest(without_logs=without_logs)
            for piece in stub.ExportBackup(request, metadata=metadata):
                handle.write(piece.data)
                progress.advance(task, len(piece.data))
    except grpc.RpcError as error:
        partial.unlink(missing_ok=True)
        typer.echo(f"error: {error.details()}", err=True)
        raise typer.Exit(1) from None
    partial.replace(output)
    typer.echo(f"backup written to {output} ({output.stat().st_size} bytes)")


@backup.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(help="A ZIP written by `relais backup export`.", exists=True)],
    apply: Annotated[bool, typer.Option("--apply/--dry-run", help="Apply the plan (default: only show it).")] = False,
    policy: Annotated[str, typer.Option(help="On conflicting rows: keep (the server's) or replace.")] = "keep",
    server: ServerOption = None,
    api_key: KeyOption = None,
    token: TokenOption = None,
    config: ConfigOption = None,
) -> None:
    """Send an archive to check and plan its import (dry run), or to apply it; prints the plan as JSON."""
    import grpc
    from relais.options.v1 import options_pb2
    from relais.v1 import backup_pb2

    policies = {"keep": backup_pb2.CONFLICT_POLICY_KEEP, "replace": backup_pb2.CONFLICT_POLICY_REPLACE}
    if policy not in policies:
        raise typer.BadParameter("must be keep or replace", param_hint="--policy")
    channel, (stub, metadata) = _connect(server, api_key, token, config)
    first = backup_pb2.ImportBackupRequest(
        file=options_pb2.UploadedFile(filename=archive.name, content_type="application/zip"),
        dry_run=not apply,
        conflict_policy=policies[policy],
    )
    progress = _progress("sending, then applying" if apply else "sending, then checking")
    try:
        with channel, progress:
            task = progress.add_task("import", total=archive.stat().st_size)
            requests = _requests(archive, first, lambda size: progress.advance(task, size))
            response = stub.ImportBackup(requests, metadata=metadata)
    except grpc.RpcError as error:
        typer.echo(f"error: {error.details()}", err=True)
        raise typer.Exit(1) from None
    plan = json_format.MessageToDict(
        response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    typer.echo(json.dumps(plan, indent=2, ensure_ascii=False))
