"""Settings: command-line flags > RELAIS_* environment > config file (TOML) > defaults.

RELAIS_DATA_DIR=/srv/relais RELAIS_DATABASE_URL=postgresql://relais@db/relais relais serve
relais serve --config /etc/relais.toml        # keys as below, e.g. http_port = 8080
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from server.inference.config import ModelConfig

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
    # Seconds between keep-alive pings on WebSockets whose dialect has them (/ws/chat).
    ws_ping_interval: float = Field(default=20.0, gt=0)
    # Largest HTTP request body the bridge accepts (413 beyond).
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # The disk check fails below this many free bytes on the data directory's volume.
    min_free_disk_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    # Run database migrations when the server starts.
    migrate_on_start: bool = True

    # Identity. No secret has a default: the signing key is generated and stored at first
    # start when unset, and no account exists until an operator creates one.
    secret_key: SecretStr | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    access_token_ttl: int = Field(default=3600, gt=0)
    refresh_token_ttl: int = Field(default=30 * 86400, gt=0)
    allow_registration: bool = True
    # Seconds an authenticated token or API key is answered from memory. Any identity change
    # (logout, revocation, roles...) empties the cache at once, in every process sharing Redis.
    principal_cache_ttl: float = Field(default=5.0, ge=0)
    # Anonymous callers may use the routes marked allow_anonymous (AI Orchestrator).
    allow_anonymous: bool = False
    # Mark the access_token cookie Secure (set it when serving over HTTPS).
    cookie_secure: bool = False

    # Rate limits ("N/second|minute|hour|day" or "N/Ss"), per client address for anonymous
    # callers and per identity for the others; in Redis when redis_url is set.
    rate_limit_anonymous: str = "60/minute"
    rate_limit_user: str = "600/minute"
    rate_limit_admin: str = "6000/minute"
    # Sign-in attempts per account and address.
    rate_limit_login: str = "5/300s"
    rate_limit_prefix: str = "relais:rl:"
    # Peers whose x-forwarded-for names the real client (the bridge's address when it runs apart).
    trusted_proxies: frozenset[str] = frozenset({"127.0.0.1", "::1"})

    # Generation models (see server/inference/config.py); the packaged Gemma 3 270M when empty.
    models: list[ModelConfig] = Field(default_factory=list)
    # Model used when a request names none: "auto" (the router) unless set.
    default_model: str | None = None
    # Load local models at start (in the background) rather than on their first request.
    llm_preload: bool = True
    # Context window of the packaged model.
    llm_context_window: int = Field(default=2048, gt=0)
    # Requests a local model serves at once (one llama.cpp context each), and how many may wait.
    llm_parallel: int = Field(default=2, ge=1, le=64)
    # CPU threads llama.cpp may use, shared by the busy slots; one core less than the machine has
    # by default. llama.cpp's threads spin at each step: when one of them loses its core to another
    # process, every token waits (measured here: 50 tok/s on 2 idle cores, 4.6 tok/s on 2 cores
    # with one busy; 1 thread kept 23-30 tok/s either way).
    llm_threads: int | None = Field(default=None, ge=1)
    llm_queue_limit: int = Field(default=64, ge=0)
    # max_tokens when a request gives none, and the most a request may ask for.
    llm_default_max_tokens: int = Field(default=256, ge=1)
    llm_max_tokens: int = Field(default=2048, ge=1)
    # Milliseconds between two messages of one token stream, at least: tokens that come faster
    # share a message (none is dropped). 5 ms caps a stream at 200 messages/s, more than a screen
    # shows, and delays no token of a model slower than 200 tokens/s. 0 sends a message per token.
    llm_stream_interval_ms: float = Field(default=5.0, ge=0, le=1000)

    # Retrieval. The vector store: a Milvus Lite file under data_dir unless a server URI is set
    # (e.g. "http://milvus:19530"), with its token ("user:password" or an API key).
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    milvus_collection: str = Field(default="relais_passages", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    # The local assistant's corpus (/rag/reindex); data_dir/corpus when unset.
    corpus_dir: Path | None = None
    # Embeddings: the packaged all-MiniLM-L6-v2 in-process ("local"), or a model on Triton.
    embedding_backend: Literal["local", "triton"] = "local"
    embedding_url: str | None = None
    embedding_model: str = "all_minilm_l6_v2"
    embedding_input: str = "TEXT"
    embedding_output: str = "EMBEDDING"
    embedding_dimension: int = Field(default=384, gt=0)
    # CPU threads torch may use for local embeddings; every core when unset.
    embedding_threads: int | None = Field(default=None, ge=1)
    # Largest uploaded document (413 beyond).
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Passage size and overlap, in characters.
    chunk_chars: int = Field(default=800, ge=100, le=8000)
    chunk_overlap: int = Field(default=100, ge=0, le=1000)
    # Open the vector store at start (else at its first use).
    retrieval_preload: bool = True
    # Passages given to an assistant reply.
    reply_passages: int = Field(default=4, ge=0, le=20)
    # How often passages and files left behind (a crash, the store down) are looked for, and
    # how long an ingestion may stay silent before what it wrote counts as left behind.
    retrieval_cleanup_seconds: float = Field(default=300.0, gt=0)
    ingest_grace_seconds: float = Field(default=600.0, ge=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("corpus_dir")
    @classmethod
    def _absolute_corpus(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @model_validator(mode="after")
    def _embedding_backend(self) -> Settings:
        if self.embedding_backend == "triton" and not self.embedding_url:
            raise ValueError("embedding_backend 'triton' needs embedding_url (host:port of Triton's gRPC port)")
        if self.chunk_overlap >= self.chunk_chars:
            raise ValueError("chunk_overlap must be smaller than chunk_chars")
        return self

    @property
    def corpus_path(self) -> Path:
        return self.corpus_dir or self.data_dir / "corpus"

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
