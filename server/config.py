"""Settings: command-line flags > RELAIS_* environment > config file (TOML) > defaults.

RELAIS_DATA_DIR=/srv/relais RELAIS_DATABASE_URL=postgresql://relais@db/relais relais serve
relais serve --config /etc/relais.toml        # keys as below, e.g. http_port = 8080
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from server.inference.config import ModelConfig
from server.tools.config import McpServerConfig

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
    # With `only: all`, the bridge calls the server in this process without a socket (the
    # interceptors run as over the wire); false sends its calls over the loopback channel.
    bridge_in_process: bool = True
    data_dir: Path = Path("data")
    # SQLAlchemy URL; a SQLite file under data_dir when unset.
    database_url: str | None = None
    # Optional Redis for cross-process state (rate limits, fan-out) and its health check.
    redis_url: str | None = None
    log_level: str = "INFO"
    # `text` (one line per event) or `json` (one JSON object per line, with trace ids when tracing).
    log_format: Literal["text", "json"] = "text"
    # Origins whose browser scripts may call the HTTP API (CORS), e.g. "https://app.example.com";
    # a comma-separated list or a JSON array in RELAIS_CORS_ORIGINS. None by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Seconds in-flight RPCs and streams get to finish on shutdown.
    shutdown_grace: float = Field(default=10.0, ge=0)
    # Seconds a stream may stay quiet (e.g. waiting in the model's queue) before a keep-alive
    # goes out: SSE comments, /ws/chat pings, /llm/stream "waiting" statuses, Socket.IO pings.
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
    # Credentials that prove nothing (bad tokens, guessed API keys) per client address; beyond,
    # credentials from that address get 429 until the window ends.
    rate_limit_auth_failures: str = "20/minute"
    rate_limit_prefix: str = "relais:rl:"
    # Redis pub/sub channels of the event bus (one per topic: "<prefix><topic>"); replicas that
    # share events share the prefix.
    events_channel_prefix: str = "relais:events:"
    # Seconds a stream's events stay journaled for /history/replay (in Redis when redis_url is set).
    journal_ttl_seconds: float = Field(default=3600.0, gt=0)
    journal_prefix: str = "relais:journal:"
    # Without Redis, the journal lives in this process's memory: at most this many bytes, the streams
    # written least recently forgotten first.
    journal_memory_bytes: int = Field(default=8 << 20, ge=0)
    # Proxies (addresses or networks, e.g. ["10.0.0.0/8"]) whose X-Forwarded-For names the real
    # client, over HTTP and gRPC. None by default: a forwarded address from anyone else is ignored,
    # so no client can reset its own rate limits.
    trusted_proxies: frozenset[str] = frozenset()
    # Proves to the gRPC server that a forwarded client address comes from the bridge. Generated
    # per process by `relais serve`; set the same value on both halves when they run apart
    # (`--only grpc` / `--only bridge`), or list the bridge's address in trusted_proxies.
    bridge_secret: SecretStr | None = None

    # Generation models (see server/inference/config.py); the packaged Gemma 3 270M when empty.
    models: list[ModelConfig] = Field(default_factory=list)
    # Other names clients may give for a model, e.g. {"mistral-medium": "gemma3-270m"}
    # (RELAIS_MODEL_ALIASES as JSON): agents and requests naming anything else are refused
    # with the valid names listed.
    model_aliases: dict[str, str] = Field(default_factory=dict)
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
    # Messages a second this process sends on its token streams, all together, before the interval
    # above widens: each of N streams then sends at most N / this many a second (64 streams: 50/s,
    # 20 ms apart; 320: 10/s). A message costs the relay the same CPU whatever its length; 0 lets
    # the interval alone decide, at any load.
    llm_stream_messages_per_second: float = Field(default=3200.0, ge=0)
    # Bytes of generated text one stream may hold for a reader slower than the model (its tokens are
    # merged meanwhile); a reader further behind gets a terminal slow_consumer error.
    stream_buffer_bytes: int = Field(default=1 << 20, ge=4096)
    # Generations this process runs at once, every backend together; beyond, up to stream_queue
    # more wait in order, their streams told their place (status QUEUED, queue_position), and the
    # rest (and unary calls and chat replies, which cannot be told) get 429 with Retry-After.
    max_streams: int = Field(default=512, ge=1)
    stream_queue: int = Field(default=256, ge=0)

    # Retrieval. The vector store: a Milvus Lite file under data_dir unless a server URI is set
    # (e.g. "http://milvus:19530"), with its token ("user:password" or an API key).
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    milvus_collection: str = Field(default="relais_passages", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
    # The local assistant's corpus (/rag/reindex); data_dir/corpus when unset.
    corpus_dir: Path | None = None
    # Uploaded documents' bytes; data_dir/documents when unset. Replicas of one deployment share it
    # (a volume every replica mounts): any replica serves a download or exports a backup.
    documents_dir: Path | None = None
    # Where the backup.export task writes its archives; data_dir/backups when unset. Shared by the
    # replicas too, so that whichever runs a tick keeps the one set of newest archives.
    backups_dir: Path | None = None
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
    # Load the local embedding model in the background at start (else the first search or upload
    # after a start waits 10-20 s for it).
    embedding_preload: bool = True
    # Embed short requests (a query, a memory) on an ONNX Runtime export of the local model, made
    # after start: ~4 ms a query instead of torch's ~15, for ~260 MB more memory. False keeps torch.
    embedding_onnx: bool = True
    # Passages given to an assistant reply.
    reply_passages: int = Field(default=4, ge=0, le=20)
    # How often passages and files left behind (a crash, the store down) are looked for, and
    # how long an ingestion may stay silent before what it wrote counts as left behind.
    retrieval_cleanup_seconds: float = Field(default=300.0, gt=0)
    ingest_grace_seconds: float = Field(default=600.0, ge=0)

    # Plugins (server/plugins/, docs/plugins.md). A bundle installs when signed (Ed25519) by one of
    # these keys: base64 raw public keys or paths to files holding one (PEM or base64), separated
    # by commas or spaces. Unsigned bundles install only when allowed.
    plugins_trusted_keys: str = ""
    plugins_allow_unsigned: bool = False
    # Plugins of Relais' own plugins/ folder installed and enabled at the first start.
    plugins_shipped: list[str] = Field(default_factory=lambda: ["tasks", "hello"])
    plugins_shipped_dir: Path | None = None
    # Where the plugin runtime (the SDK and its dependencies) is assembled; data_dir/plugins/runtime.
    plugins_runtime_dir: Path | None = None
    # Bundle limits: size, size once expanded, entries, expansion ratio of one entry.
    plugins_max_bundle_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    plugins_max_uncompressed_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    plugins_max_entries: int = Field(default=4096, gt=0)
    plugins_max_ratio: float = Field(default=100.0, gt=1)
    # Limits of each plugin process: address space, open files, processes and threads.
    plugins_memory_limit_mb: int = Field(default=1024, ge=64)
    plugins_max_open_files: int = Field(default=256, ge=16)
    plugins_max_processes: int = Field(default=256, ge=8)
    # Seconds a plugin has to print its handshake and answer its health check, and to stop.
    plugins_start_timeout: float = Field(default=30.0, gt=0)
    plugins_stop_grace: float = Field(default=5.0, ge=0)
    # Restarts after crashes allowed within the window before a plugin is `failed`; the first
    # restart waits `plugins_restart_backoff` seconds, each next one twice as long (30 s at most).
    plugins_max_restarts: int = Field(default=5, ge=0)
    plugins_restart_window: float = Field(default=300.0, gt=0)
    plugins_restart_backoff: float = Field(default=0.5, ge=0)
    # A plugin's log: lines kept, and the output rate beyond which it is stopped.
    plugins_log_lines: int = Field(default=2000, ge=10)
    plugins_log_rate_bytes: int = Field(default=1024 * 1024, gt=0)
    # How often each replica converges on the plugins table besides the bus's announcements.
    plugins_reconcile_seconds: float = Field(default=30.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(origin.strip() for origin in text.split(",") if origin.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "*" or not origin.startswith(("http://", "https://")) or origin.rstrip("/").count("/") > 2:
                raise ValueError(f"{origin!r} is not an origin: give scheme://host[:port], never '*'")
        return tuple(origin.rstrip("/") for origin in value)

    # Tools (MCP). External MCP servers (see server/tools/config.py), and each call's limits:
    # seconds one tool call may run and characters of its result kept.
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    tool_timeout: float = Field(default=30.0, gt=0, le=600)
    tool_output_chars: int = Field(default=8000, ge=100, le=1_000_000)
    # Seconds between liveness pings of a connected MCP server; the longest wait between two
    # attempts to reopen a failed one (the wait doubles from 0.5 s); seconds to open one.
    mcp_ping_interval: float = Field(default=15.0, gt=0)
    mcp_max_backoff: float = Field(default=60.0, gt=0)
    mcp_connect_timeout: float = Field(default=20.0, gt=0)
    # web_fetch, for administrators only, off unless enabled: its size and time caps, and the
    # private networks (CIDRs) an operator deliberately lets it reach (none: only public addresses).
    web_fetch: bool = False
    web_fetch_max_bytes: int = Field(default=1_000_000, gt=0, le=50_000_000)
    web_fetch_timeout: float = Field(default=10.0, gt=0, le=120)
    web_fetch_allow_networks: list[str] = Field(default_factory=list)
    # execute_command, for administrators only: the programs it may run (names on PATH or
    # absolute paths; empty turns the tool off), and the seconds a run may take.
    execute_allow: list[str] = Field(default_factory=list)
    execute_timeout: float = Field(default=20.0, gt=0, le=600)
    # The agent loop: model steps per reply (each may call tools) and seconds per reply.
    agent_max_steps: int = Field(default=4, ge=1, le=32)
    agent_timeout_seconds: float = Field(default=300.0, gt=0)

    @field_validator("web_fetch_allow_networks")
    @classmethod
    def _fetch_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)
        return value

    # Scheduled tasks (/jobs, /manager/tasks, /system/tasks), run by DBOS Transact. Its database:
    # a SQLite file beside Relais' own (relais.dbos.sqlite) or Relais' PostgreSQL database unless
    # set; on PostgreSQL, in the schema tasks_schema ("dbos", or "<schema>_dbos" when
    # database_url sets a search_path).
    tasks_database_url: str | None = None
    tasks_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    # Runs kept in each task's history (older ones are deleted ten minutes after they end).
    tasks_history_limit: int = Field(default=50, ge=1, le=1000)
    # Each replica beats this often; one silent for tasks_dead_after_seconds is taken for dead,
    # and its unfinished runs resume on another.
    tasks_heartbeat_seconds: float = Field(default=2.0, gt=0)
    tasks_dead_after_seconds: float = Field(default=10.0, gt=0)
    # How soon a task changed on another replica is planned here.
    tasks_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    # A tick not begun this long after it was due counts as late (/manager/health).
    tasks_late_after_seconds: float = Field(default=5.0, gt=0)
    # Runs one replica executes at once; more wait for a slot (and start late).
    tasks_max_concurrent_runs: int = Field(default=32, ge=1, le=1000)

    @field_validator("data_dir", "documents_dir", "backups_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
        return value

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
        if self.tasks_dead_after_seconds < 2 * self.tasks_heartbeat_seconds:
            raise ValueError("tasks_dead_after_seconds must be at least twice tasks_heartbeat_seconds")
        return self

    @property
    def corpus_path(self) -> Path:
        return self.corpus_dir or self.data_dir / "corpus"

    @property
    def documents_path(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    @property
    def backups_path(self) -> Path:
        return self.backups_dir or self.data_dir / "backups"

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
