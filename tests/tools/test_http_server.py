"""An MCP server over streamable HTTP (the mcp SDK's own server in uvicorn), reached through the
registry as an operator configures it: listed with the headers it needs, called, and refused
(its tools hidden) when its credentials are wrong."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import Principal
from server.tools.config import McpServerConfig, ToolSettings
from server.tools.registry import CallerContext, ToolRegistry
from server.tools.sources import SourceState, configured_source

TOKEN = "s3cret-token"


def _app() -> ASGIApp:
    mcp = MCPServer("remote")

    @mcp.tool()
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    inner = mcp.streamable_http_app()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        if scope["type"] == "http" and headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await inner(scope, receive, send)

    return guarded


@pytest.fixture(scope="module")
def remote() -> Iterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    thread.join(5)


async def test_a_streamable_http_server_is_listed_and_called(remote: str) -> None:
    registry = ToolRegistry(ToolSettings(mcp_connect_timeout=10))
    config = McpServerConfig(name="remote", url=remote, headers={"Authorization": SecretStr(f"Bearer {TOKEN}")})
    source = await registry.add_source(configured_source(config), wait=10)
    try:
        assert source.state is SourceState.CONNECTED, source.error
        caller = CallerContext(principal=Principal(subject="user:1", permissions=frozenset({"tools:*"}), user_id=1))
        assert [tool.name for tool in registry.usable(caller.principal)] == ["shout"]
        outcome = await registry.call(caller, "shout", {"text": "relais"})
        assert (outcome.content, outcome.is_error) == ("RELAIS", False)
    finally:
        await registry.close()


async def test_a_server_refusing_its_credentials_is_reported_and_hides_nothing_else(remote: str) -> None:
    registry = ToolRegistry(ToolSettings(mcp_connect_timeout=5, mcp_max_backoff=30))
    config = McpServerConfig(name="remote", url=remote, headers={"Authorization": SecretStr("Bearer wrong")})
    source = await registry.add_source(configured_source(config), wait=10)
    try:
        assert source.state is SourceState.DISCONNECTED and source.error
        assert registry.health() == {"remote": False}
        assert registry.count() == 0
        assert source.next_attempt_at is not None
    finally:
        await asyncio.wait_for(registry.close(), 10)
