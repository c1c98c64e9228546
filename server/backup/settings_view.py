"""The effective settings as a backup records them: every value but the secrets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from server.config import Settings

# URLs that may carry a user:password@.
URL_SETTINGS = ("database_url", "redis_url", "milvus_uri", "embedding_url")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def effective_settings(settings: Settings) -> dict[str, Any]:
    """`settings` as JSON values; secret fields are left out and URLs lose their credentials."""
    secret = {name for name, value in settings if isinstance(value, SecretStr)}
    secret |= {name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)}
    values = settings.model_dump(mode="json", exclude=secret)
    for name in URL_SETTINGS:
        if isinstance(values.get(name), str):
            values[name] = _without_credentials(values[name])
    return dict(sorted(values.items()))


def differences(archived: dict[str, Any], current: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, archived, current) for each setting whose value differs, as JSON text."""
    import json

    names = sorted(set(archived) | set(current))
    return [
        (name, json.dumps(archived.get(name)), json.dumps(current.get(name)))
        for name in names
        if archived.get(name) != current.get(name)
    ]
