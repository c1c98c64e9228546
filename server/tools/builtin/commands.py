"""execute_command: run one allowed program, for administrators, off unless programs are listed.

No shell: the program (one of `execute_allow`, resolved to its path at start) gets its
arguments as a list. Standard input is empty, the environment is a bare PATH and locale, the
working directory a scratch folder; the run is killed (its whole process group) at the
timeout, when the call is cancelled, or when the client leaves; output is cut at the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext

log = logging.getLogger("relais.tools.builtin")
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def resolve_programs(names: Sequence[str]) -> dict[str, str]:
    """name → executable path, for the allowed programs that exist."""
    programs = {}
    for name in names:
        path = shutil.which(name, path=ENVIRONMENT["PATH"]) if "/" not in name else name
        if path and os.access(path, os.X_OK):
            programs[Path(name).name] = path
        else:
            log.warning("execute_command: %r is not an executable program; it is left out", name)
    return programs


class CommandRunner:
    def __init__(self, programs: dict[str, str], *, timeout: float, max_output: int, workdir: Path) -> None:
        self.programs = programs
        self._timeout = timeout
        self._max_output = max_output
        self._workdir = workdir

    async def run(self, program: str, args: list[str]) -> dict[str, Any]:
        path = self.programs.get(program)
        if path is None:
            raise ToolError(f"{program!r} is not an allowed program ({', '.join(sorted(self.programs))})")
        self._workdir.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            path,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=ENVIRONMENT,
            cwd=self._workdir,
            start_new_session=True,
        )
        timed_out = False
        try:
            assert process.stdout is not None
            output = await asyncio.wait_for(self._collect(process.stdout), self._timeout)
            await asyncio.wait_for(process.wait(), max(0.1, self._timeout))
        except TimeoutError:
            timed_out, output = True, b""
        finally:
            # Cancelled or timed out: the program and anything it started die with the call.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        text = output.decode("utf-8", errors="replace")
        if timed_out:
            raise ToolError(f"{program} did not finish within {self._timeout:g} s and was stopped")
        return {"exit_code": process.returncode, "output": text, "truncated": len(output) >= self._max_output}

    async def _collect(self, stream: asyncio.StreamReader) -> bytes:
        output = bytearray()
        while chunk := await stream.read(65536):
            room = self._max_output - len(output)
            output += chunk[:room]
        return bytes(output)


def command_tools(runner: CommandRunner) -> list[BuiltinTool]:
    async def execute_command(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        return await runner.run(arguments["program"], list(arguments.get("args", [])))

    return [
        BuiltinTool(
            name="execute_command",
            description="Run an allowed program with arguments (no shell) and return its output. Administrators only.",
            parameters=schema(
                {
                    "program": {"type": "string", "enum": sorted(runner.programs)},
                    "args": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "maxItems": 32},
                },
                required=["program"],
            ),
            category="system",
            run=execute_command,
            read_only=False,
            destructive=True,
            admin_only=True,
        )
    ]
