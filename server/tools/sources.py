"""One MCP server the tools come from, kept connected by a supervisor task.

A source is anything that opens an `mcp.ClientSession`: an async context manager factory
(`Opener`). The supervisor task enters it (MCP sessions live in the task that opened them),
lists the tools, then lists them again every `ping_interval`; when the session breaks (a ping
or a call fails, the process died) the tools are hidden and the source is opened again after
0.5 s, 1 s, 2 s… up to `max_backoff`. `reconnect()` closes and reopens it now.

This is the seam plugins use: `ToolRegistry.add_source(SourceSpec(name="plugin:x",
kind="plugin", open=lambda: plugin_session()))` where `plugin_session()` is an async context
manager yielding an initialised `ClientSession`; `remove_source("plugin:x")` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import mcp_types
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from server.auth import Principal
from server.tools.config import McpServerConfig

log = logging.getLogger("relais.tools")

Opener = Callable[[], AbstractAsyncContextManager[ClientSession]]
CallerOpener = Callable[[Principal], AbstractAsyncContextManager[ClientSession]]
FIRST_BACKOFF = 0.5
# Pages of tools/list read from one server at most: a server that paginates forever cannot hang us.
MAX_PAGES = 50


class SourceState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpec:
    """How to open a source and how to treat its tools."""

    name: str
    # "builtin", "stdio", "http" or "plugin".
    kind: str
    open: Opener
    admin_only: bool = False
    category: str = "external"
    # Receives the caller's context through the call's _meta, and may declare its tools'
    # category and admin-only flag there: in-process built-ins only.
    trusted: bool = False
    # Opens a session for one caller, who is named to the server out of band (a plugin's MCP
    # server learns the caller from x-relais-* headers): each call then runs in a session of its
    # own, while `open`'s long-lived session lists the tools.
    per_caller: CallerOpener | None = None


@asynccontextmanager
async def open_client(server: Any) -> AsyncIterator[ClientSession]:
    """An initialised session with `server` (an in-process mcp Server, stdio parameters, a
    transport), as mcp.Client opens it."""
    async with Client(server) as client:
        yield client.session


def configured_source(config: McpServerConfig) -> SourceSpec:
    """The source of an operator-configured MCP server."""
    if config.command is not None:
        parameters = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env={key: value.get_secret_value() for key, value in config.env.items()} or None,
            cwd=config.cwd,
        )
        return SourceSpec(
            name=config.name,
            kind="stdio",
            open=lambda: open_client(parameters),
            admin_only=config.admin_only,
            category=config.category,
        )
    assert config.url is not None
    url = config.url
    headers = {key: value.get_secret_value() for key, value in config.headers.items()}

    @asynccontextmanager
    async def open_http() -> AsyncIterator[ClientSession]:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
            open_client(streamable_http_client(url, http_client=http)) as session,
        ):
            yield session

    return SourceSpec(
        name=config.name, kind="http", open=open_http, admin_only=config.admin_only, category=config.category
    )


async def list_all_tools(session: ClientSession) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def describe(error: BaseException) -> str:
    """One line for an operator: the innermost errors of an exception group included."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:500]


class Source:
    """A supervised connection to one MCP server."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        ping_interval: float,
        max_backoff: float,
        connect_timeout: float,
        on_change: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.state = SourceState.CONNECTING
        self.error = ""
        self.tools: list[mcp_types.Tool] = []
        self.session: ClientSession | None = None
        self.connected_at: datetime | None = None
        self.failures = 0
        self.next_attempt_at: datetime | None = None
        self._ping_interval = ping_interval
        self._max_backoff = max_backoff
        self._connect_timeout = connect_timeout
        self._on_change = on_change
        self._wake = asyncio.Event()
        self._reopen = False
        self._stopping = False
        # Attempts are numbered from 1 as they begin; `_answered` is the number of the last one
        # that connected or failed (a session that breaks later answers nothing new).
        self._begun = 0
        self._answered = 0
        self._attempt_done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp-source-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._set_down("stopped")

    def broken(self, error: BaseException) -> None:
        """A call found the session dead: hide the tools now and reopen it."""
        if self.state is SourceState.CONNECTED:
            log.warning("MCP server %s failed: %s", self.name, describe(error))
            self._set_down(describe(error))
            self._wake.set()

    async def reconnect(self, wait: float) -> None:
        """Close and reopen now; returns when that attempt has succeeded or failed. An attempt
        already under way when this is called answers only if it succeeds: begun before the
        call, its failure may predate what the caller fixed, so the attempt after it answers."""
        async with self._attempt_done:
            seen, fresh = self._answered, self._begun + 1
            self._reopen = True
            self._wake.set()

            def answered() -> bool:
                return self._answered >= fresh or (self._answered > seen and self.state is SourceState.CONNECTED)

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempt_done.wait_for(answered), wait)

    async def wait_settled(self, wait: float) -> None:
        """Wait until the first attempt has ended (start-up: the built-in tools are listed at once)."""
        async with self._attempt_done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempt_done.wait_for(lambda: self._answered > 0), wait)

    async def _supervise(self) -> None:
        while not self._stopping:
            self._reopen = False
            self._wake.clear()
            self.state, self.next_attempt_at = SourceState.CONNECTING, None
            self._begun += 1
            try:
                await self._connected_session()
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # an MCP session ends in exception groups as often as not
                if self._stopping:
                    break
                self.failures += 1
                self._set_down(describe(error))
                log.warning("MCP server %s is unavailable (attempt %d): %s", self.name, self.failures, self.error)
                await self._answer_attempt()
            else:
                # Closed on purpose: reopened at once (or stopped).
                self._set_down("closed to reconnect")
                continue
            if self._reopen:
                continue
            # 0.5 s after the first failure, doubling up to max_backoff; a success starts again.
            delay = min(FIRST_BACKOFF * 2 ** min(self.failures - 1, 16), self._max_backoff)
            self.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _connected_session(self) -> None:
        """Open, list, then watch the session until it breaks or a reopen is asked for."""
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self._connect_timeout):
                session = await stack.enter_async_context(self.spec.open())
                tools = await list_all_tools(session)
            # A fresh session answers a reopen asked for while it was being opened.
            self._reopen = False
            self.session, self.tools, self.error, self.failures = session, tools, "", 0
            self.state, self.connected_at = SourceState.CONNECTED, datetime.now(UTC)
            log.info("MCP server %s connected with %d tools", self.name, len(tools))
            self._on_change()
            await self._answer_attempt()
            await self._watch(session)

    async def _watch(self, session: ClientSession) -> None:
        """List the tools every `ping_interval` (MCP 2026 has no ping): a dead server fails
        the listing, and a server whose tools changed is seen within the interval."""
        while not (self._stopping or self._reopen) and self.state is SourceState.CONNECTED:
            try:
                await asyncio.wait_for(self._wake.wait(), self._ping_interval)
                self._wake.clear()
            except TimeoutError:
                tools = await asyncio.wait_for(list_all_tools(session), self._connect_timeout)
                if [tool.model_dump() for tool in tools] != [tool.model_dump() for tool in self.tools]:
                    log.info("MCP server %s now offers %d tools", self.name, len(tools))
                    self.tools = tools
                    self._on_change()
        if self.state is not SourceState.CONNECTED and not self._reopen:
            raise ConnectionError(self.error or "the session broke")

    async def _answer_attempt(self) -> None:
        async with self._attempt_done:
            self._answered = self._begun
            self._attempt_done.notify_all()

    def _set_down(self, error: str) -> None:
        was_up = self.state is SourceState.CONNECTED
        self.state, self.error = SourceState.DISCONNECTED, error
        self.session, self.tools, self.connected_at = None, [], None
        if was_up:
            self._on_change()
