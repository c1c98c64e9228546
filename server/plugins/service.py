"""The plugin administration: install, enable, start, stop, reload, remove; logs and stats.

    plugins = PluginService(database, fleet, settings=…)
    view, status = await plugins.upload(data)          # or BundleRefused / RoutesRefused…
    view = await plugins.enable("hello")               # runs on every replica

Each change is written to the plugins table first, then this replica converges on it (and waits,
within the start timeout, for the plugin to settle here), and the other replicas are told to.
Run-time facts in a view (state, active, loaded_at, restarts, error) are this replica's.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import FailedPrecondition, FieldViolation, NotFound, ValidationFailed
from server.paging import Page, page_window
from server.plugins import repository, sources
from server.plugins.bundle import Trust, manifest_bytes, open_bundle
from server.plugins.fleet import PluginFleet, manifest_of
from server.plugins.logs import LogLine
from server.plugins.manifest import ID, Manifest
from server.plugins.models import PluginRow
from server.plugins.routes import Route, TakenRoutes, read_services
from server.plugins.runner import FAILED, RUNNING, PluginRunner
from server.plugins.stats import Percentiles

MAX_TAIL = 1000
DEFAULT_TAIL = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginView:
    id: str
    manifest: Manifest
    sha256: str
    source: str
    signed_by: str
    enabled: bool
    installed_at: datetime
    last_reload: datetime | None
    routes: tuple[Route, ...]
    state: str
    active: bool
    loaded_at: datetime | None
    restarts: int
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginStatsView:
    id: str
    state: str
    calls: int
    errors: int
    latency_ms: Percentiles
    restarts: int
    cpu_seconds: float
    memory_bytes: int
    uptime_seconds: float
    pid: int
    memory_limit_bytes: int
    open_files_limit: int


def _stamp(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


class PluginService:
    def __init__(self, fleet: PluginFleet, *, settle_timeout: float = 60.0) -> None:
        self.fleet = fleet
        self.database = fleet.database
        self._settle_timeout = settle_timeout

    # ----------------------------------------------------------------------- reading

    async def list_plugins(self, *, active_only: bool, skip: int, offset: int, limit: int) -> Page[PluginView]:
        first, size = page_window(skip=skip, offset=offset, limit=limit, default=100)
        async with self.database.sessions() as session:
            rows = await repository.list_plugins(session)
        views = [self._view(row) for row in rows]
        if active_only:
            views = [view for view in views if view.active]
        return Page(items=views[first : first + size], total=len(views), skip=first, limit=size)

    async def get(self, plugin_id: str) -> PluginView:
        async with self.database.sessions() as session:
            return self._view(await self._row(session, plugin_id))

    def logs(self, plugin_id: str, tail: int | None) -> tuple[list[LogLine], int]:
        count = DEFAULT_TAIL if tail is None else tail
        if not 1 <= count <= MAX_TAIL:
            raise ValidationFailed([FieldViolation(field="tail", message=f"must be between 1 and {MAX_TAIL}")])
        runner = self.fleet.runners.get(plugin_id)
        if runner is None:
            return [], 0
        return runner.log.tail(count), runner.log.dropped

    async def stats(self, plugin_id: str) -> PluginStatsView:
        await self.get(plugin_id)
        runner = self.fleet.runners.get(plugin_id)
        limits = self.fleet.config.limits
        usage = _usage(runner)
        return PluginStatsView(
            id=plugin_id,
            state=runner.state if runner else "installed",
            calls=runner.stats.calls if runner else 0,
            errors=runner.stats.errors if runner else 0,
            latency_ms=runner.stats.percentiles() if runner else Percentiles(),
            restarts=runner.restarts if runner else 0,
            cpu_seconds=usage[0],
            memory_bytes=usage[1],
            uptime_seconds=usage[2],
            pid=usage[3],
            memory_limit_bytes=limits.memory_bytes,
            open_files_limit=limits.open_files,
        )

    # ---------------------------------------------------------------------- installing

    async def upload(self, data: bytes) -> tuple[PluginView, str]:
        return await self.install_bundle(data, source="upload")

    async def install(self, source: str, *, name: str, version: str) -> tuple[PluginView, str]:
        if name and not ID.match(name):
            raise ValidationFailed([FieldViolation(field="name", message=f"must match {ID.pattern}")])
        with tempfile.TemporaryDirectory(prefix="relais-plugin-source-") as scratch:
            data = await sources.fetch(source, version, Path(scratch), max_bytes=self.fleet.limits.max_bytes)
        return await self.install_bundle(data, source=source, name=name, version=version)

    async def install_bundle(
        self, data: bytes, *, source: str, name: str = "", version: str = "", trust: Trust | None = None
    ) -> tuple[PluginView, str]:
        """Check the bundle whole, record it, and converge; nothing is kept when a check fails."""
        store = self.fleet.store
        with store.staging() as staging:
            bundle = await asyncio.to_thread(
                open_bundle, data, limits=self.fleet.limits, trust=trust or self.fleet.trust, into=staging
            )
            manifest = bundle.manifest
            _check_expected(manifest, name=name, version=version)
            async with self.database.sessions() as session:
                taken = _taken(await repository.list_plugins(session), manifest.id)
            descriptor_set = (staging / manifest.descriptor_set).read_bytes() if manifest.descriptor_set else b""
            read_services(descriptor_set, manifest, taken)
            async with self.database.sessions() as session, session.begin():
                row = await repository.get_plugin(session, manifest.id)
                status = "installed" if row is None else "updated"
                if row is not None and row.sha256 == bundle.sha256:
                    status = "unchanged"
                elif row is None:
                    row = PluginRow(id=manifest.id, enabled=False, stopped=False, generation=1)
                    session.add(row)
                if status != "unchanged":
                    now = datetime.now(UTC)
                    row.version, row.manifest = manifest.version, manifest_bytes(manifest).decode()
                    row.bundle, row.sha256, row.size = data, bundle.sha256, bundle.size
                    row.source, row.signed_by, row.updated_at = source[:2048], bundle.signed_by, now
                    if status == "updated" and row.enabled:
                        row.last_reload_at = now
            store.keep(staging, manifest.id, bundle.sha256)
        return await self._changed(manifest.id, status), status

    # ------------------------------------------------------------------- state changes

    async def enable(self, plugin_id: str) -> PluginView:
        async with self.database.sessions() as session, session.begin():
            row = await self._row(session, plugin_id)
            await self._check_dependencies(session, manifest_of(row))
            restart = not (row.enabled and not row.stopped and self._running_here(plugin_id))
            row.enabled, row.stopped = True, False
            if restart:
                await repository.next_generation(session, plugin_id)
        return await self._changed(plugin_id, "enabled")

    async def disable(self, plugin_id: str) -> PluginView:
        async with self.database.sessions() as session, session.begin():
            row = await self._row(session, plugin_id)
            row.enabled = False
        return await self._changed(plugin_id, "disabled")

    async def start(self, plugin_id: str) -> PluginView:
        async with self.database.sessions() as session, session.begin():
            row = await self._row(session, plugin_id)
            if not row.enabled:
                raise FailedPrecondition(f"Plugin {plugin_id} is disabled: enable it to start it")
            restart = row.stopped or not self._running_here(plugin_id)
            row.stopped = False
            if restart:  # a new generation: every replica (re)starts it, a failed one included
                await repository.next_generation(session, plugin_id)
        return await self._changed(plugin_id, "started")

    async def stop(self, plugin_id: str) -> PluginView:
        async with self.database.sessions() as session, session.begin():
            row = await self._row(session, plugin_id)
            if not row.enabled:
                raise FailedPrecondition(f"Plugin {plugin_id} is disabled, so it does not run")
            row.stopped = True
        return await self._changed(plugin_id, "stopped")

    async def reload(self, plugin_id: str) -> tuple[PluginView, str]:
        async with self.database.sessions() as session, session.begin():
            row = await self._row(session, plugin_id)
            if not row.enabled or row.stopped:
                raise FailedPrecondition(
                    f"Plugin {plugin_id} does not run ({'stopped' if row.enabled else 'disabled'})"
                )
            row.last_reload_at = datetime.now(UTC)
            await repository.next_generation(session, plugin_id)
            await session.flush()
            await session.refresh(row)
            wanted = (row.sha256, row.generation)
        view = await self._changed(plugin_id, "reloaded")
        runner = self.fleet.runners.get(plugin_id)
        if runner is None or runner.release is None or runner.release.key != wanted:
            raise FailedPrecondition(f"Plugin {plugin_id} could not be reloaded: {view.error or view.state}")
        return view, "reloaded"

    async def delete(self, plugin_id: str) -> None:
        async with self.database.sessions() as session, session.begin():
            await self._row(session, plugin_id)
            dependents = [
                r.id for r in await repository.list_plugins(session) if plugin_id in manifest_of(r).dependencies
            ]
            if dependents:
                raise FailedPrecondition(f"Plugin {plugin_id} is needed by {', '.join(dependents)}: remove them first")
            await repository.delete_plugin(session, plugin_id)
        await self.fleet.reconcile()
        await self.fleet.announce(plugin_id, "removed")

    # ------------------------------------------------------------------------ helpers

    async def _changed(self, plugin_id: str, action: str) -> PluginView:
        await self.fleet.reconcile()
        await self.fleet.announce(plugin_id, action)
        runner = self.fleet.runners.get(plugin_id)
        if runner is not None:
            await runner.settle(self._settle_timeout)
        return await self.get(plugin_id)

    def _running_here(self, plugin_id: str) -> bool:
        runner = self.fleet.runners.get(plugin_id)
        return runner is not None and runner.state == RUNNING

    @staticmethod
    async def _row(session: AsyncSession, plugin_id: str) -> PluginRow:
        row = await repository.get_plugin(session, plugin_id)
        if row is None:
            raise NotFound(f"No plugin {plugin_id!r} is installed")
        return row

    @staticmethod
    async def _check_dependencies(session: AsyncSession, manifest: Manifest) -> None:
        rows = {row.id: row for row in await repository.list_plugins(session)}
        missing = [dependency for dependency in manifest.dependencies if dependency not in rows]
        if missing:
            raise FailedPrecondition(f"Plugin {manifest.id} needs {', '.join(missing)}: install it first")

    def _view(self, row: PluginRow) -> PluginView:
        manifest = manifest_of(row)
        runner: PluginRunner | None = self.fleet.runners.get(row.id)
        release = self.fleet.release_of(row)
        return PluginView(
            id=row.id,
            manifest=manifest,
            sha256=row.sha256,
            source=row.source,
            signed_by=row.signed_by,
            enabled=row.enabled,
            installed_at=row.installed_at,
            last_reload=row.last_reload_at,
            routes=release.served.routes if release is not None else (),
            state=runner.state if runner is not None else ("installed" if not row.enabled else "starting"),
            active=runner is not None and runner.state == RUNNING,
            loaded_at=_stamp(runner.loaded_at) if runner is not None else None,
            restarts=runner.restarts if runner is not None else 0,
            error=runner.error if runner is not None and (runner.state == FAILED or runner.error) else "",
        )


def _check_expected(manifest: Manifest, *, name: str, version: str) -> None:
    problems = []
    if name and manifest.id != name:
        problems.append(FieldViolation(field="name", message=f"the bundle is plugin {manifest.id!r}, not {name!r}"))
    if version and manifest.version != version:
        problems.append(FieldViolation(field="version", message=f"the bundle is version {manifest.version}"))
    if problems:
        raise ValidationFailed(problems)


def _taken(rows: Sequence[PluginRow], plugin_id: str) -> TakenRoutes:
    prefixes, services = {}, {}
    for row in rows:
        if row.id == plugin_id:
            continue
        manifest = manifest_of(row)
        prefixes[row.id] = manifest.api_prefix if manifest.services else ""
        services.update({service: row.id for service in manifest.services})
    return TakenRoutes(prefixes=prefixes, services=services)


def _usage(runner: PluginRunner | None) -> tuple[float, int, float, int]:
    """(CPU seconds, resident bytes, seconds serving, pid) of the plugin's process; zeros when none."""
    process = runner.current if runner is not None else None
    if process is None or not process.running:
        return 0.0, 0, 0.0, 0
    try:
        measured = psutil.Process(process.pid)
        times, memory = measured.cpu_times(), measured.memory_info()
    except psutil.Error:
        return 0.0, 0, 0.0, 0
    return times.user + times.system, int(memory.rss), max(time.time() - process.started_at, 0.0), process.pid
