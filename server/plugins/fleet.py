"""Every plugin on this replica, converging on the plugins table.

The table is the truth; this replica makes its processes match it whenever it may have changed:
after its own changes, when another replica announces one on the bus (plugins.changed), and
periodically (the bus delivers at most once). For each row it makes sure the bundle is extracted
here (from the stored, verified bundle) and tells the plugin's runner what to run. Runners report
back each time the process serving a plugin changes; the fleet then moves the proxy's methods,
publishes the route table the bridges watch, and announces plugin.loaded / plugin.reloaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from server.events import EventBus
from server.events.bus import Overflow, Selector
from server.events.topics import PLUGIN_LOADED, PLUGIN_RELOADED, PLUGINS_CHANGED, PluginChanged, PluginsChanged
from server.plugins import repository
from server.plugins.bundle import BundleLimits, Trust, open_bundle
from server.plugins.contributions import PluginTaskAction, PluginToolSource, task_action
from server.plugins.manifest import Manifest, parse_manifest
from server.plugins.models import PluginRow
from server.plugins.proxy import PluginProxy
from server.plugins.routes import TakenRoutes, read_services
from server.plugins.runner import DISABLED, FAILED, INSTALLED, STOPPED, Desired, PluginRunner, Release, RunnerConfig
from server.plugins.store import LocalStore
from server.storage import Database

log = logging.getLogger("relais.plugins")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutesSnapshot:
    plugin_id: str
    version: str
    api_prefix: str
    services: tuple[str, ...]
    descriptor_set: bytes
    sha256: str


class RouteTable:
    """The routes of the plugins running here, with a generation that grows at each change."""

    def __init__(self) -> None:
        self.generation = 0
        self.plugins: tuple[RoutesSnapshot, ...] = ()
        self._changed = asyncio.Event()

    def update(self, plugins: tuple[RoutesSnapshot, ...]) -> None:
        if plugins == self.plugins:
            return
        self.generation += 1
        self.plugins = plugins
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def watch(self) -> AsyncIterator[tuple[int, tuple[RoutesSnapshot, ...]]]:
        """The table now, then after every change (a slow reader gets the latest)."""
        seen = -1
        while True:
            if self.generation != seen:
                seen = self.generation
                yield seen, self.plugins
            changed = self._changed
            if self.generation == seen:
                await changed.wait()


def manifest_of(row: PluginRow) -> Manifest:
    return parse_manifest(json.loads(row.manifest))


def trust_for(row: PluginRow, trust: Trust) -> Trust:
    """How a stored bundle is checked again here: as it was checked at install."""
    if row.signed_by in ("shipped", "unsigned"):
        return Trust(keys=trust.keys, allow_unsigned=True, shipped=row.signed_by == "shipped")
    return trust


class PluginFleet:
    def __init__(
        self,
        database: Database,
        store: LocalStore,
        events: EventBus,
        *,
        config: RunnerConfig,
        trust: Trust,
        limits: BundleLimits,
    ) -> None:
        self.database = database
        self.store = store
        self.events = events
        self.config = config
        self.trust = trust
        self.limits = limits
        self.runners: dict[str, PluginRunner] = {}
        self.proxy = PluginProxy()
        self.routes = RouteTable()
        self._releases: dict[tuple[str, str, int], Release] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="plugins-listen")
        self._spawn(self.reconcile())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        await asyncio.gather(*(runner.close() for runner in self.runners.values()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()

    async def announce(self, plugin_id: str, action: str) -> None:
        """Tell the other replicas the table changed."""
        await self.events.publish(PLUGINS_CHANGED, PluginsChanged(plugin_id=plugin_id, action=action))

    # -------------------------------------------------------------------- converging

    async def reconcile(self) -> None:
        """Make this replica's plugins match the table (starting and stopping run in the background)."""
        async with self._lock:
            async with self.database.sessions() as session:
                rows = list(await repository.list_plugins(session))
            for row in rows:
                await self._converge_row(row)
            present = {row.id for row in rows}
            for plugin_id in [plugin_id for plugin_id in self.runners if plugin_id not in present]:
                runner = self.runners.pop(plugin_id)
                self.proxy.unmount(runner)
                await runner.close()
                self.store.remove(plugin_id)
                self._publish_routes()
            for row in rows:
                runner = self.runners[row.id]
                in_use = {process.spec.bundle_dir.parent.name for process in runner.processes()}
                self.store.prune(row.id, {row.sha256, *in_use})

    async def _converge_row(self, row: PluginRow) -> None:
        runner = self.runners.get(row.id)
        if runner is None:
            runner = self.runners[row.id] = PluginRunner(row.id, self.config, self._python, self._changed)
        try:
            release = await self._release(row)
        except Exception as error:
            log.warning("plugin %s cannot be installed on this replica: %s", row.id, error)
            runner.state, runner.error = FAILED, f"cannot be installed on this replica: {error}"
            return
        idle = (STOPPED if row.stopped else DISABLED) if row.enabled or row.generation > 1 else INSTALLED
        if row.enabled and not row.stopped:
            runner.converge(Desired(release=release, run=True))
        else:
            runner.converge(Desired(release=release, run=False, idle_state=idle))

    async def _release(self, row: PluginRow) -> Release:
        key = (row.id, row.sha256, row.generation)
        release = self._releases.get(key)
        if release is not None and self.store.has(row.id, row.sha256):
            return release
        if not self.store.has(row.id, row.sha256):
            await self._materialize(row)
        manifest = manifest_of(row)
        bundle_dir = self.store.bundle_dir(row.id, row.sha256)
        descriptor_set = (bundle_dir / manifest.descriptor_set).read_bytes() if manifest.descriptor_set else b""
        release = Release(
            plugin_id=row.id,
            sha256=row.sha256,
            generation=row.generation,
            manifest=manifest,
            served=read_services(descriptor_set, manifest, TakenRoutes()),
            descriptor_set=descriptor_set,
            bundle_dir=bundle_dir,
            work_dir=self.store.work_dir(row.id),
        )
        self._releases = {k: v for k, v in self._releases.items() if k[0] != row.id}
        self._releases[key] = release
        return release

    def release_of(self, row: PluginRow) -> Release | None:
        """The release of the row's bundle prepared here, if any (any generation)."""
        for (plugin_id, sha256, _), release in self._releases.items():
            if plugin_id == row.id and sha256 == row.sha256:
                return release
        return None

    async def _materialize(self, row: PluginRow) -> None:
        """Extract the stored bundle here, checked again like an upload."""
        async with self.database.sessions() as session:
            data = await repository.get_bundle(session, row.id, row.sha256)
        if data is None:
            raise RuntimeError("its bundle changed while it was being installed")
        with self.store.staging() as staging:
            await asyncio.to_thread(
                open_bundle, data, limits=self.limits, trust=trust_for(row, self.trust), into=staging
            )
            self.store.keep(staging, row.id, row.sha256)

    async def _python(self, release: Release) -> Path:
        return await self.store.python(release.plugin_id, release.sha256, release.manifest)

    # -------------------------------------------------------------- runners report

    def _changed(self, runner: PluginRunner, change: str) -> None:
        if change == "unloaded":
            self.proxy.unmount(runner)
        else:
            self.proxy.mount(runner)
        self._publish_routes()
        release = runner.release
        if change in ("loaded", "reloaded") and release is not None:
            topic = PLUGIN_RELOADED if change == "reloaded" else PLUGIN_LOADED
            details = {
                "node": self.events.node,
                "api_prefix": release.manifest.api_prefix,
                "routes": [f"{route.method} {route.path}" for route in release.served.routes],
            }
            event = PluginChanged(name=runner.plugin_id, version=release.manifest.version, details=details)
            self._spawn(self.events.publish(topic, event))

    def _publish_routes(self) -> None:
        snapshots = []
        for plugin_id, runner in sorted(self.runners.items()):
            release = runner.release
            if runner.current is None or release is None or not release.served.routes:
                continue
            snapshots.append(
                RoutesSnapshot(
                    plugin_id=plugin_id,
                    version=release.manifest.version,
                    api_prefix=release.manifest.api_prefix,
                    services=release.served.services,
                    descriptor_set=release.descriptor_set,
                    sha256=hashlib.sha256(release.descriptor_set).hexdigest(),
                )
            )
        self.routes.update(tuple(snapshots))

    # ------------------------------------------------------------------ bus listener

    async def _listen(self) -> None:
        while True:
            try:
                async with self.events.subscribe([Selector(PLUGINS_CHANGED)]) as changes:
                    async for envelope in changes:
                        if envelope.origin != self.events.node:
                            await self.reconcile()
            except Overflow:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("plugins: could not converge on a change announced by another replica")
                await asyncio.sleep(1)

    def _spawn(self, coroutine: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --------------------------------------------------------------- contributions

    def tool_sources(self) -> list[PluginToolSource]:
        """One MCP tool source per running plugin that has tools."""
        sources = []
        for plugin_id, runner in sorted(self.runners.items()):
            process, release = runner.current, runner.release
            if process is None or release is None or not process.description.mcp_socket:
                continue
            sources.append(
                PluginToolSource(
                    name=f"plugin:{plugin_id}",
                    plugin_id=plugin_id,
                    description=release.manifest.description,
                    tools=tuple(process.description.tools),
                    runner=runner,
                )
            )
        return sources

    def actions(self) -> list[PluginTaskAction]:
        """The task actions of the running plugins, named "<plugin id>.<action>"."""
        found = []
        for _, runner in sorted(self.runners.items()):
            release = runner.release
            if runner.current is None or release is None:
                continue
            for action in release.manifest.actions:
                found.append(task_action(runner, action.name, action.description, action.params_schema))
        return found
