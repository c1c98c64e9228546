"""Measurements of the machine and of the dependencies, each bounded in time."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from server.subprocesses import communicate_within

PROBE_TIMEOUT = 2.0
GPU_CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DiskUsage:
    path: str
    free_bytes: int
    total_bytes: int


def disk_usage(path: Path) -> DiskUsage:
    usage = shutil.disk_usage(path)
    return DiskUsage(path=str(path), free_bytes=usage.free, total_bytes=usage.total)


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuReport:
    names: tuple[str, ...]

    @property
    def available(self) -> bool:
        return bool(self.names)


class GpuProbe:
    """Lists NVIDIA GPUs with nvidia-smi (or the driver's /proc entries), cached for a minute:
    GPUs do not come and go, and spawning nvidia-smi costs tens of milliseconds."""

    def __init__(self, proc_root: Path = Path("/proc/driver/nvidia/gpus")) -> None:
        self._proc_root = proc_root
        self._cached: GpuReport | None = None
        self._measured_at = 0.0

    async def measure(self) -> GpuReport:
        if self._cached is None or time.monotonic() - self._measured_at > GPU_CACHE_SECONDS:
            self._cached = GpuReport(names=tuple(await self._nvidia_smi() or self._from_proc()))
            self._measured_at = time.monotonic()
        return self._cached

    async def _nvidia_smi(self) -> list[str]:
        executable = shutil.which("nvidia-smi")
        if executable is None:
            return []
        try:
            process = await asyncio.create_subprocess_exec(
                executable,
                "--query-gpu=name",
                "--format=csv,noheader",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            output, _ = await communicate_within(process, PROBE_TIMEOUT)
        except (OSError, TimeoutError):
            return []
        if process.returncode != 0:
            return []
        return [line.strip() for line in output.decode().splitlines() if line.strip()]

    def _from_proc(self) -> list[str]:
        if not self._proc_root.is_dir():
            return []
        names = []
        for entry in sorted(self._proc_root.iterdir()):
            information = entry / "information"
            model = "NVIDIA GPU"
            if information.is_file():
                for line in information.read_text(errors="replace").splitlines():
                    if line.startswith("Model:"):
                        model = line.partition(":")[2].strip()
            names.append(model)
        return names


class RedisProbe:
    """PINGs Redis; returns the round trip in milliseconds, or None when it does not answer."""

    def __init__(self, url: str) -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)

    async def ping(self) -> float | None:
        started = time.perf_counter()
        try:
            # redis-py types commands for its sync and async clients at once; this one is async.
            await asyncio.wait_for(cast(Awaitable[bool], self._client.ping()), PROBE_TIMEOUT)
        except (aioredis.RedisError, OSError, TimeoutError):
            return None
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        await self._client.aclose()
