"""Where the CLI keeps who you are: the server and token of `relais login`.

The file is `<config dir>/credentials.json` (`~/.config/relais` on Linux, or
`RELAIS_CONFIG_DIR`), written with mode 0600 inside a 0700 directory, so other
local users cannot read the token. Passwords are never stored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import typer


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLogin:
    server: str
    email: str
    access_token: str
    refresh_token: str


def config_dir() -> Path:
    configured = os.environ.get("RELAIS_CONFIG_DIR")
    return Path(configured) if configured else Path(typer.get_app_dir("relais"))


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def save(login: StoredLogin) -> Path:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created 0600 before any byte is written: the token is never readable by others, even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(login), file)
    os.chmod(path, 0o600)
    return path


def load() -> StoredLogin | None:
    path = credentials_path()
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return StoredLogin(**values)
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def forget() -> bool:
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
