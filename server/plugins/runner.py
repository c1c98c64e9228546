"""One plugin on this replica: drives its process toward what the database says it should be.

    runner.converge(Desired(release=…, run=True))   # start, reload onto a new release, or stop
    await runner.settle(30)                          # until it has done what it can

A crash (or a start that fails) is retried after a back-off that doubles each time; after
`max_restarts` within `restart_window` seconds the plugin is `failed`, with the last error, until
an administrator starts, reloads or updates it. A reload starts the new process beside the old
one; once the new one answers its health check the calls move to it in one assignment, and the
old one finishes its calls and stops. A new release that fails to start leaves the old one
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from server.plugins.logs import PluginLog
from server.plugins.manifest import Manifest
from server.plugins.process import Limits, PluginProcess, ProcessFailed, ProcessSpec
from server.plugins.routes import ServedRoutes
from server.plugins.stats import CallStats

log = logging.getLogger("relais.plugins")

INSTALLED, DISABLED, STARTING, RUNNING, STOPPED, FAILED = (
    "installed",
    "disabled",
    "starting",
    "running",
    "stopped",
    "failed",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """One installed version of a plugin, at one generation, ready to run here."""

    plugin_id: str
    sha256: str
    generation: int
    manifest: Manifest
    served: ServedRoutes
    descriptor_set: bytes
    bundle_dir: Path
    # The plugin's own working directory (kept across versions).
    work_dir: Path

    @property
    def key(self) -> tuple[str, int]:
        return (self.sha256, self.generation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Desired:
    release: Release
    run: bool
    # The state to show when not running: installed, disabled or stopped.
    idle_state: str = DISABLED


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerConfig:
    limits: Limits = field(default_factory=Limits)
    start_timeout: float = 30.0
    stop_grace: float = 5.0
    drain_timeout: float = 30.0
    max_restarts: int = 5
    restart_window: float = 300.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    log_lines: int = 2000
    log_bytes_per_second: int = 1024 * 1024


Prepare = Callable[[Release], Awaitable[Path]]
# Called on every change of the process serving: "loaded", "reloaded" or "unloaded".
OnChange = Callable[["PluginRunner", str], None]


class PluginRunner:
    def __init__(self, plugin_id: str, config: RunnerConfig, prepare: Prepare, on_change: OnChange) -> None:
        self.plugin_id = plugin_id
        self.config = config
        self.log = PluginLog(max_lines=config.log_lines, max_bytes_per_second=config.log_bytes_per_second)
        self.stats = CallStats()
        self.state = INSTALLED
        self.error = ""
        self.restarts = 0
        self.current: PluginProcess | None = None
        self.release: Release | None = None
        self._prepare = prepare
        self._on_change = on_change
        self._desired: Desired | None = None
        # Counts wishes: the converging task runs again while new ones arrive (a crash is one).
        self._wishes = 0
        self._task: asyncio.Task[None] | None = None
        self._crashes: deque[float] = deque()
        # A release that failed here: not tried again until the generation changes.
        self._given_up: tuple[str, int] | None = None
        self._retiring: set[PluginProcess] = set()
        self._watchers: set[asyncio.Task[None]] = set()

    @property
    def loaded_at(self) -> float | None:
        return self.current.started_at if self.current is not None else None

    def processes(self) -> list[PluginProcess]:
        """The processes of this plugin alive here: the one serving and those finishing their calls."""
        return [process for process in (self.current, *self._retiring) if process is not None]

    def converge(self, desired: Desired) -> asyncio.Task[None]:
        """Work toward `desired` (replacing any earlier wish); the task ends when settled."""
        self._desired = desired
        self._wishes += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._converge(), name=f"plugin-{self.plugin_id}")
        return self._task

    async def settle(self, seconds: float) -> None:
        """Wait (at most `seconds`) until the runner has done what it can toward its wish."""
        while self._task is not None and not self._task.done():
            task = self._task
            done, _ = await asyncio.wait({task}, timeout=seconds)
            if not done:
                return

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._halt(self.state)
        for task in list(self._watchers):
            task.cancel()

    # ------------------------------------------------------------------------- steps

    async def _converge(self) -> None:
        while True:
            desired, wishes = self._desired, self._wishes
            assert desired is not None
            try:
                await self._step(desired)
            except Exception:  # never leave the plugin without a supervisor
                log.exception("plugin %s: unexpected error while converging", self.plugin_id)
                self.error = "internal error in Relais while starting or stopping the plugin"
            if self._wishes == wishes:
                return

    async def _step(self, desired: Desired) -> None:
        if not desired.run:
            await self._halt(desired.idle_state)
            return
        key = desired.release.key
        serving = self.current is not None and self.current.running
        if serving and self.release is not None and self.release.key == key:
            return
        if self._given_up == key:
            return
        if serving:
            await self._reload(desired.release)
        else:
            await self._start(desired.release)

    async def _start(self, release: Release) -> None:
        self.state = STARTING
        while True:
            delay = self._backoff()
            if delay:
                self.log.note(f"restarting in {delay:.1f} s")
                await asyncio.sleep(delay)
                if self._desired is None or self._desired.release.key != release.key or not self._desired.run:
                    return
            try:
                process = await self._spawn(release)
            except _NotPreparable as error:
                self._give_up(release, str(error))
                return
            except ProcessFailed as error:
                self._crashes.append(time.monotonic())
                self.error = f"failed to start: {error}"
                self.log.note(self.error)
                if self._too_many_crashes():
                    self._give_up(release, self.error)
                    return
                self.restarts += 1
                continue
            self._serve(process, release, "loaded")
            return

    async def _reload(self, release: Release) -> None:
        old = self.current
        try:
            process = await self._spawn(release)
        except (ProcessFailed, _NotPreparable) as error:
            self.error = f"reload failed, the previous version keeps serving: {error}"
            self.log.note(self.error)
            self._given_up = release.key
            return
        self._serve(process, release, "reloaded")
        if old is not None:
            await self._retire(old)

    async def _halt(self, idle_state: str) -> None:
        old = self.current
        self.current, self.release = None, None
        if old is not None:
            self._on_change(self, "unloaded")
            await self._retire(old)
        self.state = idle_state
        self.error = "" if idle_state != FAILED else self.error
        self._crashes.clear()
        self._given_up = None

    # ---------------------------------------------------------------------- helpers

    async def _spawn(self, release: Release) -> PluginProcess:
        try:
            python = await self._prepare(release)
        except Exception as error:
            raise _NotPreparable(f"its environment cannot be prepared: {error}") from None
        manifest = release.manifest
        spec = ProcessSpec(
            plugin_id=self.plugin_id,
            python=python,
            bundle_dir=release.bundle_dir,
            work_dir=release.work_dir,
            entry_point=manifest.entry_point,
            environment=manifest.environment,
            limits=self.config.limits,
        )
        process = PluginProcess(spec, self.log)
        await process.start(self.config.start_timeout)
        await self._check_description(process, release)
        return process

    async def _check_description(self, process: PluginProcess, release: Release) -> None:
        described = process.description
        declared = {action.name for action in release.manifest.actions}
        if set(described.services) != set(release.manifest.services) or {a.name for a in described.actions} != declared:
            await process.stop(0)
            raise ProcessFailed("it describes other services or actions than its manifest declares")

    def _serve(self, process: PluginProcess, release: Release, change: str) -> None:
        self.current, self.release = process, release
        self.state, self.error = RUNNING, ""
        self.log.note(f"{change} version {release.manifest.version}")
        watcher = asyncio.create_task(self._watch(process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self._on_change(self, change)

    async def _watch(self, process: PluginProcess) -> None:
        status = await process.wait()
        if process is not self.current or process in self._retiring:
            return
        self.current, self.release = None, None
        self._on_change(self, "unloaded")
        why = process.failure or f"exited with status {status}"
        stderr = self.log.last_error_lines()
        self.error = f"crashed: {why}{' — stderr: ' + stderr if stderr else ''}"
        self.log.note(self.error)
        await process.stop(0)
        self._crashes.append(time.monotonic())
        desired = self._desired
        if desired is None or not desired.run:
            return
        if self._too_many_crashes():
            self._give_up(desired.release, self.error)
            return
        self.restarts += 1
        self.state = STARTING
        self.converge(desired)

    async def _retire(self, process: PluginProcess) -> None:
        self._retiring.add(process)
        try:
            await process.drain(self.config.drain_timeout)
            await process.stop(self.config.stop_grace)
        finally:
            self._retiring.discard(process)

    def _give_up(self, release: Release, error: str) -> None:
        self.state, self.error, self._given_up = FAILED, error, release.key
        self.log.note(f"failed: {error}")
        log.warning("plugin %s failed: %s", self.plugin_id, error)

    def _recent_crashes(self) -> int:
        horizon = time.monotonic() - self.config.restart_window
        while self._crashes and self._crashes[0] < horizon:
            self._crashes.popleft()
        return len(self._crashes)

    def _too_many_crashes(self) -> bool:
        return self._recent_crashes() > self.config.max_restarts

    def _backoff(self) -> float:
        crashes = self._recent_crashes()
        if not crashes:
            return 0.0
        return float(min(self.config.backoff_base * 2 ** (crashes - 1), self.config.backoff_max))


class _NotPreparable(Exception):
    """The release cannot run here at all (its virtualenv cannot be made): not worth retrying."""
