"""One plugin process: started with its own directory, environment and resource limits, then
handshake, health check and Describe; stopped with SIGTERM, then SIGKILL.

    process = PluginProcess(spec, log)
    await process.start(30)              # seconds; or ProcessFailed (the process is gone)
    process.channel, process.description
    await process.exited                  # when it ends by itself
    await process.stop(grace=5)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from relais.plugin.v1 import runtime_pb2, runtime_pb2_grpc
from relais_plugin import handshake

from server.plugins.logs import MAX_LINE, PluginLog, pump

# Run by the plugin's own interpreter before its entry point: apply the limits Relais chose, die
# with Relais (PR_SET_PDEATHSIG), then run the module as `python -m` would.
BOOT = """
import ctypes, json, os, resource, runpy, signal, sys
for name, value in json.loads(os.environ.pop("RELAIS_PLUGIN_RLIMITS")).items():
    resource.setrlimit(getattr(resource, name), (value, value))
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)
except (OSError, AttributeError):
    pass
if os.getppid() != int(os.environ.pop("RELAIS_PLUGIN_PARENT")):
    sys.exit(1)
runpy.run_module(sys.argv[1], run_name="__main__", alter_sys=True)
"""
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
]


class ProcessFailed(Exception):
    """The process could not start or serve; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    memory_bytes: int = 1024 * 1024 * 1024
    open_files: int = 256
    # Processes and threads beyond those the user already runs (RLIMIT_NPROC counts the user's
    # every task; root is not held to it).
    processes: int = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    plugin_id: str
    python: Path
    bundle_dir: Path
    work_dir: Path
    entry_point: str
    # Names of Relais' environment variables the manifest asks for.
    environment: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)


def plugin_environment(spec: ProcessSpec, socket_dir: Path) -> dict[str, str]:
    """Nothing of Relais' environment but what the manifest names: no secret reaches a plugin."""
    tmp = spec.work_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(spec.work_dir),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(spec.bundle_dir),
        # glibc's per-thread arenas reserve address space the memory limit counts.
        "MALLOC_ARENA_MAX": "2",
        handshake.MAGIC_COOKIE_KEY: handshake.MAGIC_COOKIE_VALUE,
        handshake.PLUGIN_ID_KEY: spec.plugin_id,
        handshake.BUNDLE_DIR_KEY: str(spec.bundle_dir),
        handshake.WORK_DIR_KEY: str(spec.work_dir),
        handshake.SOCKET_DIR_KEY: str(socket_dir),
        "RELAIS_PLUGIN_RLIMITS": json.dumps(_rlimits(spec.limits)),
        "RELAIS_PLUGIN_PARENT": str(os.getpid()),
    }
    for name in spec.environment:
        if name in os.environ and not name.startswith("RELAIS_"):
            env[name] = os.environ[name]
    return env


def _rlimits(limits: Limits) -> dict[str, int]:
    values = {"RLIMIT_AS": limits.memory_bytes, "RLIMIT_NOFILE": limits.open_files, "RLIMIT_CORE": 0}
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    wanted = _user_tasks() + limits.processes
    values["RLIMIT_NPROC"] = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    return values


def _user_tasks() -> int:
    """Threads the current user runs now (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count


class PluginProcess:
    def __init__(self, spec: ProcessSpec, log: PluginLog) -> None:
        self.spec = spec
        self.log = log
        self.channel: grpc.aio.Channel | None = None
        self.description = runtime_pb2.DescribeResponse()
        self.started_at = 0.0
        self.in_flight = 0
        self._process: asyncio.subprocess.Process | None = None
        self._socket_dir: Path | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.failure: str = ""
        self._callables: dict[tuple[str, bool], Any] = {}

    def callable(self, method: str, *, streaming: bool) -> Any:
        """The raw-bytes multicallable of `method` on this process's channel, made once."""
        found = self._callables.get((method, streaming))
        if found is None:
            assert self.channel is not None
            make = self.channel.unary_stream if streaming else self.channel.unary_unary
            found = self._callables[(method, streaming)] = make(method)
        return found

    @property
    def pid(self) -> int:
        return self._process.pid if self._process is not None else 0

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, seconds: float) -> None:
        """Spawn, read the handshake, wait for SERVING, Describe; ProcessFailed otherwise."""
        deadline = time.monotonic() + seconds
        # Short, private and per process: a Unix socket path has at most 107 bytes.
        self._socket_dir = Path(tempfile.mkdtemp(prefix=f"relais-{self.spec.plugin_id[:12]}-"))
        self.spec.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.spec.python),
                "-c",
                BOOT,
                self.spec.entry_point,
                cwd=self.spec.work_dir,
                env=plugin_environment(self.spec, self._socket_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=MAX_LINE * 2,
            )
            self.log.note(f"started process {self._process.pid}")
            assert self._process.stderr is not None
            self._pumps.append(asyncio.create_task(pump(self._process.stderr, "stderr", self.log, self._flooded)))
            await self._connect(deadline)
        except BaseException as error:
            await self.stop(grace=0)
            if isinstance(error, ProcessFailed | grpc.aio.AioRpcError | OSError | TimeoutError | ValueError):
                raise ProcessFailed(self._explain(error)) from None
            raise
        self.started_at = time.time()

    async def _connect(self, deadline: float) -> None:
        assert self._process is not None and self._process.stdout is not None
        line = await self._within(deadline, self._process.stdout.readline(), "print its handshake line")
        if not line:
            await self._within(deadline, self._process.wait(), "exit")
            raise ProcessFailed(f"exited with status {self._process.returncode} before its handshake")
        try:
            shake = handshake.parse(line.decode(errors="replace"))
        except handshake.HandshakeError as error:
            raise ProcessFailed(f"its first line is not a handshake: {error}") from None
        self._pumps.append(asyncio.create_task(pump(self._process.stdout, "stdout", self.log, self._flooded)))
        self.channel = grpc.aio.insecure_channel(shake.target, options=CHANNEL_OPTIONS)
        health = health_pb2_grpc.HealthStub(self.channel)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessFailed("its health check never answered SERVING")
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=min(remaining, 2))
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            await asyncio.sleep(0.05)
        runtime = runtime_pb2_grpc.PluginRuntimeServiceStub(self.channel)
        self.description = await runtime.Describe(
            runtime_pb2.DescribeRequest(), timeout=max(deadline - time.monotonic(), 1)
        )

    async def _within(self, deadline: float, awaitable: object, what: str) -> bytes:
        try:
            return await asyncio.wait_for(awaitable, max(deadline - time.monotonic(), 0.01))  # type: ignore[arg-type]
        except TimeoutError:
            raise ProcessFailed(f"did not {what} within the start timeout") from None

    def _explain(self, error: BaseException) -> str:
        why = str(error) if isinstance(error, ProcessFailed) else f"{type(error).__name__}: {error}"
        if self.failure:
            why = f"{self.failure} ({why})"
        stderr = self.log.last_error_lines()
        return f"{why}{' — stderr: ' + stderr if stderr else ''}"

    def _flooded(self) -> None:
        self.failure = "it wrote to its log faster than the limit allows"
        self.log.note(f"stopped: {self.failure}")
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.running:
            assert self._process is not None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, sig)

    async def wait(self) -> int:
        """The exit status, once the process has ended (with whatever it started: its group is
        killed) and its output has been read."""
        assert self._process is not None
        status = await self._process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        # A child of the plugin that kept the pipes open must not keep us waiting.
        _, pending = await asyncio.wait(self._pumps, timeout=1) if self._pumps else (set(), set())
        for task in pending:
            task.cancel()
        return status

    # ------------------------------------------------------------------ calls in flight

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, seconds: float) -> None:
        """Wait until no call is in flight (at most `seconds`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), seconds)

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; channel closed, sockets removed."""
        if self.running:
            assert self._process is not None
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), grace)
            except TimeoutError:
                self._signal(signal.SIGKILL)
            await self._process.wait()
            self.log.note(f"process {self._process.pid} ended with status {self._process.returncode}")
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)  # what the plugin started dies with it
        if self._pumps:
            _, pending = await asyncio.wait(self._pumps, timeout=1)
            for task in pending:
                task.cancel()
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
