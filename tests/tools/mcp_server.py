"""A small MCP server over stdio for the tests, written with the mcp SDK.

    python -m tests.tools.mcp_server MARKER_DIR

Tools: `add`, `pid` (its process id, so a test can kill it), `calculator` (a name the built-in
tools also use: listed as "ext__calculator"), `slow` (sleeps; writes MARKER_DIR/cancelled-<tag>
when its call is cancelled) and `fail` (raises).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

MARKERS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
app = MCPServer("ext")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@app.tool()
def calculator(expression: str) -> str:
    """A calculator that only echoes (its name clashes with the built-in one)."""
    return f"ext:{expression}"


@app.tool()
async def slow(seconds: float, tag: str) -> str:
    """Sleep, then answer; a cancelled call leaves a marker file."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        (MARKERS / f"cancelled-{tag}").write_text("cancelled")
        raise
    return "slept"


@app.tool()
def fail() -> str:
    """Always fails."""
    raise ToolError("this tool always fails")


if __name__ == "__main__":
    # A test takes the server down for a while by leaving an `offline` marker: starts then fail.
    if (MARKERS / "offline").exists():
        raise SystemExit("offline")
    app.run("stdio")
