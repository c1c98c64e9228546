"""`relais plugin`: write, pack and sign plugins (docs/plugins.md).

relais plugin new weather                       # a plugin to start from, in ./weather
relais plugin keygen -o signing.pem             # prints the public key for RELAIS_PLUGINS_TRUSTED_KEYS
relais plugin pack weather -o weather.zip --key signing.pem      # or pack, then sign:
relais plugin sign weather.zip --key signing.pem
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer

from server.errors import DomainError
from server.plugins.manifest import ID, MANIFEST
from server.plugins.pack import PackError, pack, sign_bundle
from server.plugins.signing import (
    KeyInvalid,
    fingerprint,
    generate_key,
    load_private_key,
    private_key_pem,
    public_key_text,
)

plugin = typer.Typer(help="Write, pack and sign plugins.", no_args_is_help=True)

KeyOption = Annotated[Path, typer.Option("--key", "-k", help="The Ed25519 private key (PEM) to sign with.")]


@plugin.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The plugin's id: lowercase letters, digits, '-' and '_'.")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to create it [./NAME].")] = None,
) -> None:
    """Create a plugin to start from: a route, an MCP tool and a task action."""
    if not ID.match(name):
        raise typer.BadParameter(f"{name!r} is not a plugin id (it must match {ID.pattern})")
    target = directory or Path(name)
    if target.exists() and any(target.iterdir()):
        raise typer.BadParameter(f"{target} exists and is not empty")
    for path, text in scaffold(name).items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_text(text)
    typer.echo(f"created plugin {name} in {target}; pack it with: relais plugin pack {target} -o {name}.zip")


@plugin.command("pack")
def pack_command(
    source: Annotated[
        Path, typer.Argument(help="The plugin's folder (with plugin.toml).", exists=True, file_okay=False)
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The bundle to write [NAME-VERSION.zip].")
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", "-k", help="Sign with this Ed25519 private key (PEM).")] = None,
    find_links: Annotated[
        list[Path] | None, typer.Option("--find-links", help="A folder of wheels pip may take requirements from.")
    ] = None,
    no_index: Annotated[bool, typer.Option(help="Take the requirements' wheels from --find-links only.")] = False,
) -> None:
    """Build a bundle: descriptor set from proto/, wheelhouse of the requirements, sha256 of every file."""
    try:
        data = pack(source, find_links=find_links or (), no_index=no_index)
        if key is not None:
            data = sign_bundle(data, load_private_key(key))
    except (PackError, KeyInvalid, DomainError) as error:
        typer.echo(f"error: {getattr(error, 'message', error)}", err=True)
        raise typer.Exit(1) from None
    manifest = _manifest(data)
    target = output or Path(f"{manifest['id']}-{manifest['version']}.zip")
    target.write_bytes(data)
    signed = "signed" if key is not None else "unsigned"
    typer.echo(f"{target}: plugin {manifest['id']} {manifest['version']}, {len(manifest['files'])} files, {signed}")


@plugin.command("sign")
def sign(
    bundle: Annotated[Path, typer.Argument(help="The bundle to sign.", exists=True, dir_okay=False)],
    key: KeyOption,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it [in place].")] = None,
) -> None:
    """Sign a bundle's manifest with an Ed25519 key (manifest.sig)."""
    try:
        private = load_private_key(key)
        signed = sign_bundle(bundle.read_bytes(), private)
    except (KeyInvalid, zipfile.BadZipFile, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    (output or bundle).write_bytes(signed)
    typer.echo(f"{output or bundle}: signed by {fingerprint(private.public_key())[:16]}…")


@plugin.command("keygen")
def keygen(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the private key (PEM, 0600).")],
) -> None:
    """Create an Ed25519 signing key; prints the public key administrators add to
    RELAIS_PLUGINS_TRUSTED_KEYS."""
    if output.exists():
        raise typer.BadParameter(f"{output} exists; refusing to overwrite a key")
    key = generate_key()
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_key_pem(key))
    typer.echo(public_key_text(key.public_key()))


def _manifest(data: bytes) -> dict[str, Any]:
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        loaded: dict[str, Any] = json.loads(archive.read(MANIFEST))
        return loaded


def scaffold(name: str) -> dict[str, str]:
    """The files of a new plugin called `name`."""
    module = name.replace("-", "_") + "_plugin"
    package = re.sub(r"[^a-z0-9]", "", name) or "plugin"
    service = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Service"
    return {
        "plugin.toml": SOURCE_MANIFEST.format(name=name, module=module),
        f"proto/{package}/v1/{package}.proto": PROTO.format(name=name, package=package, service=service),
        f"{module}/__init__.py": f'"""The {name} plugin."""\n',
        f"{module}/main.py": MAIN.format(name=name, package=package, service=service),
    }


SOURCE_MANIFEST = """\
id = "{name}"
name = "{name}"
version = "0.1.0"
author = ""
description = "What {name} does."
tags = []
api_prefix = "/{name}"
entry_point = "{module}.main"
# Other plugins it needs installed; Relais' environment variables it needs (never RELAIS_*);
# wheels it needs (packed into its wheelhouse, installed offline); permissions it asks for.
dependencies = []
environment = []
requirements = []
permissions = []

[[tools]]
name = "echo"
description = "Repeat a text"

[[actions]]
name = "echo"
description = "Repeat a text (a task action the scheduler can run)"
params_schema = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}
"""

PROTO = """\
syntax = "proto3";

// The {name} plugin's API: its routes lie under its api_prefix, /{name}.
package {package}.v1;

import "google/api/annotations.proto";

service {service} {{
  // Repeat a text.
  rpc Echo(EchoRequest) returns (EchoResponse) {{
    option (google.api.http) = {{
      post: "/{name}/echo"
      body: "*"
    }};
  }}
}}

// What to repeat.
message EchoRequest {{
  string text = 1;
}}

// The text, repeated.
message EchoResponse {{
  string text = 1;
  // Who asked (Relais passes the caller, never their credentials).
  string caller = 2;
}}
"""

MAIN = """\
\"\"\"The {name} plugin.\"\"\"

from __future__ import annotations

from typing import Any

from relais_plugin import Caller, Plugin

plugin = Plugin()


@plugin.rpc("{package}.v1.{service}", "Echo")
async def echo_route(request: Any, caller: Caller) -> dict[str, str]:
    return {{"text": request.text, "caller": caller.subject}}


@plugin.tool(description="Repeat a text")
def echo(text: str) -> str:
    return text


@plugin.action("echo")
async def echo_action(params: dict[str, Any], caller: Caller) -> dict[str, str]:
    return {{"text": params["text"]}}


if __name__ == "__main__":
    plugin.run()
"""
