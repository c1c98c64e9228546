"""Settings: command-line flags > RELAIS_* environment > config file (TOML) > defaults.

RELAIS_DATA_DIR=/srv/relais RELAIS_DATABASE_URL=postgresql://relais@db/relais relais serve
relais serve --config /etc/relais.toml        # keys as below, e.g. http_port = 8080
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "RELAIS_CONFIG"


class Settings(BaseSettings):
    """Every tunable of a Relais process. Secrets are never given defaults."""

    model_config = SettingsConfigDict(env_prefix="RELAIS_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    http_port: int = Field(default=8000, ge=0, le=65535)
    only: Literal["all", "grpc", "bridge"] = "all"
    # gRPC server the bridge calls when it runs alone (`--only bridge`).
    upstream: str | None = None
    data_dir: Path = Path("data")
    # SQLAlchemy URL; a SQLite file under data_dir when unset.
    database_url: str | None = None
    # Optional Redis for cross-process state (rate limits, fan-out) and its health check.
    redis_url: str | None = None
    log_level: str = "INFO"
    # Seconds in-flight RPCs and streams get to finish on shutdown.
    shutdown_grace: float = Field(default=10.0, ge=0)
    # Largest HTTP request body the bridge accepts (413 beyond).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # The disk check fails below this many free bytes on the data directory's volume.
    min_free_disk_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    # Run database migrations when the server starts.
    migrate_on_start: bool = True

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the async driver Relais uses for it."""
        return async_database_url(self.database_url or f"sqlite:///{self.data_dir / 'relais.db'}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(CONFIG_FILE_ENV)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def async_database_url(url: str) -> str:
    """Pick the async driver for a plain URL.

    >>> async_database_url("postgresql://postgres@127.0.0.1:5432/test")
    'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    """
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from flags (`overrides`, None meaning "not given"), environment and file."""
    if config_file is not None:
        os.environ[CONFIG_FILE_ENV] = str(config_file)
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
