"""Child processes Relais runs and waits for (pip, git, nvidia-smi): never left running behind."""

from __future__ import annotations

import asyncio


async def communicate_within(process: asyncio.subprocess.Process, seconds: float) -> tuple[bytes, bytes]:
    """The process's output once it exits. Past `seconds` (TimeoutError), or when the caller is
    cancelled, it is killed and reaped first: a hung child must not outlive the call."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return out or b"", err or b""
