"""A child process Relais waits for never outlives the wait: killed on timeout and on cancellation."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from server.subprocesses import communicate_within


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _sleeper() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", stdout=asyncio.subprocess.PIPE
    )


def test_the_output_of_a_child_that_exits_in_time() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('bonjour')", stdout=asyncio.subprocess.PIPE
        )
        return await communicate_within(child, 30)

    assert asyncio.run(scenario()) == (b"bonjour\n", b"")


def test_a_child_past_its_time_is_killed_and_reaped() -> None:
    async def scenario() -> int:
        child = await _sleeper()
        with pytest.raises(TimeoutError):
            await communicate_within(child, 0.2)
        assert child.returncode is not None
        return child.pid

    assert not _alive(asyncio.run(scenario()))


def test_a_child_whose_caller_is_cancelled_is_killed_and_reaped() -> None:
    async def scenario() -> int:
        child = await _sleeper()
        waiting = asyncio.ensure_future(communicate_within(child, 60))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert child.returncode is not None
        return child.pid

    assert not _alive(asyncio.run(scenario()))
