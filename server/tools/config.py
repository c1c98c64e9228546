"""Settings of the tools: external MCP servers, limits, and the administrators' tools.

In the TOML config file:

    [[mcp_servers]]
    name = "weather"                    # tools clash-prefixed as "weather__<tool>"
    command = "/opt/weather-mcp/bin/serve"   # a stdio server...
    args = ["--units", "metric"]
    env = { WEATHER_API_KEY = "..." }

    [[mcp_servers]]
    name = "issues"
    url = "https://mcp.example.com/mcp"      # ...or a streamable-HTTP one
    headers = { Authorization = "Bearer ..." }
    admin_only = true

or as JSON in RELAIS_MCP_SERVERS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

BUILTIN_SOURCE = "builtin"


class McpServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Also the prefix of its tools' names where they clash with another server's.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    # A stdio server: the program (and its arguments, environment and directory)...
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: Path | None = None
    # ...or a streamable-HTTP server's URL, with the headers it needs (credentials).
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    # Only administrators may use its tools.
    admin_only: bool = False
    # Category its tools are listed under.
    category: str = "external"

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if self.name == BUILTIN_SOURCE or self.name.startswith("plugin"):
            raise ValueError(f"MCP server name {self.name!r} is reserved")
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give either `command` (stdio) or `url` (streamable HTTP)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"MCP server {self.name!r}: `url` must be http:// or https://")
        return self

    @property
    def kind(self) -> str:
        return "stdio" if self.command else "http"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSettings:
    """The tools' settings, taken from the server's (server/config.py documents each)."""

    mcp_servers: tuple[McpServerConfig, ...] = ()
    tool_timeout: float = 30.0
    tool_output_chars: int = 8000
    mcp_ping_interval: float = 15.0
    mcp_max_backoff: float = 60.0
    mcp_connect_timeout: float = 20.0
    web_fetch: bool = False
    web_fetch_max_bytes: int = 1_000_000
    web_fetch_timeout: float = 10.0
    web_fetch_allow_networks: tuple[str, ...] = ()
    execute_allow: tuple[str, ...] = ()
    execute_timeout: float = 20.0

    @classmethod
    def of(cls, settings: object) -> ToolSettings:
        """The tool settings among `settings` (a server Settings), by field name."""
        values = {name: getattr(settings, name) for name in cls.__slots__ if hasattr(settings, name)}
        values["mcp_servers"] = tuple(values.get("mcp_servers", ()))
        values["web_fetch_allow_networks"] = tuple(values.get("web_fetch_allow_networks", ()))
        values["execute_allow"] = tuple(values.get("execute_allow", ()))
        return cls(**values)
