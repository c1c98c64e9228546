"""Plugins: signed bundles, each run as its own process that speaks gRPC over a Unix socket.

manifest.py      the manifest: identity, routes prefix, tools, actions, files' sha256
signing.py       Ed25519 signatures over the manifest, the administrator's trusted keys
bundle.py        checking a bundle whole (limits, paths, links, signature, hashes) into staging
routes.py        its descriptor set: services, bindings under its api_prefix, no collision
pack.py          building and signing bundles (relais plugin pack | sign)
sources.py       bundles from a local path or a git repository
store.py         plugin files on this replica (staging, bundles, virtualenvs, work dirs)
environment.py   each plugin's virtualenv over the shared plugin runtime
process.py       one plugin process: limits, environment, handshake, health, stop
logs.py, stats.py  its bounded log and its call statistics
runner.py        one plugin's supervisor: start, crash back-off, failed, blue/green reload
proxy.py         plugin gRPC methods on Relais' port, forwarded with the caller, not credentials
contributions.py MCP tool sources and task actions of running plugins
fleet.py         every plugin of this replica converging on the plugins table (and the bus)
service.py       the administration operations; servicer.py the PluginService RPCs
shipped.py       the plugins of plugins/ installed and enabled at first start
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from relais.v1 import plugins_pb2, plugins_pb2_grpc

from server.config import Settings
from server.events import EventBus
from server.plugins.bundle import BundleLimits, Trust
from server.plugins.contributions import PluginTaskAction, PluginToolSource
from server.plugins.fleet import PluginFleet
from server.plugins.process import Limits
from server.plugins.proxy import PluginProxy
from server.plugins.runner import RUNNING, RunnerConfig
from server.plugins.service import PluginService
from server.plugins.servicer import PluginServicer
from server.plugins.shipped import SHIPPED_DIR, install_shipped
from server.plugins.signing import trusted_keys
from server.plugins.store import LocalStore
from server.registration import ServiceRegistration, register
from server.storage import Database

__all__ = ["PluginDomain", "PluginTaskAction", "PluginToolSource", "start_plugins"]


@dataclass(slots=True, kw_only=True)
class PluginDomain:
    fleet: PluginFleet
    service: PluginService
    _shipped: asyncio.Task[None] | None = field(default=None)

    @property
    def proxy(self) -> PluginProxy:
        """The gRPC handler serving plugin methods (added to the server as a generic handler)."""
        return self.fleet.proxy

    def registrations(self) -> list[ServiceRegistration]:
        return [register(plugins_pb2, plugins_pb2_grpc, "PluginService", PluginServicer(self.service))]

    def tool_sources(self) -> list[PluginToolSource]:
        return self.fleet.tool_sources()

    def actions(self) -> list[PluginTaskAction]:
        return self.fleet.actions()

    async def running_count(self) -> int:
        return sum(runner.state == RUNNING for runner in self.fleet.runners.values())

    async def reconcile(self) -> None:
        await self.fleet.reconcile()

    async def close(self) -> None:
        if self._shipped is not None:
            self._shipped.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._shipped
        await self.fleet.close()


def runner_config(settings: Settings) -> RunnerConfig:
    return RunnerConfig(
        limits=Limits(
            memory_bytes=settings.plugins_memory_limit_mb * 1024 * 1024,
            open_files=settings.plugins_max_open_files,
            processes=settings.plugins_max_processes,
        ),
        start_timeout=settings.plugins_start_timeout,
        stop_grace=settings.plugins_stop_grace,
        max_restarts=settings.plugins_max_restarts,
        restart_window=settings.plugins_restart_window,
        backoff_base=settings.plugins_restart_backoff,
        log_lines=settings.plugins_log_lines,
        log_bytes_per_second=settings.plugins_log_rate_bytes,
    )


async def start_plugins(settings: Settings, database: Database, events: EventBus) -> PluginDomain:
    """The plugin domain, converging on the plugins table from now on (in the background)."""
    store = LocalStore(settings.data_dir / "plugins", settings.plugins_runtime_dir)
    fleet = PluginFleet(
        database,
        store,
        events,
        config=runner_config(settings),
        trust=Trust(keys=trusted_keys(settings.plugins_trusted_keys), allow_unsigned=settings.plugins_allow_unsigned),
        limits=BundleLimits(
            max_bytes=settings.plugins_max_bundle_bytes,
            max_uncompressed_bytes=settings.plugins_max_uncompressed_bytes,
            max_entries=settings.plugins_max_entries,
            max_ratio=settings.plugins_max_ratio,
        ),
    )
    service = PluginService(fleet, settle_timeout=settings.plugins_start_timeout + 15)
    await fleet.start()
    shipped = asyncio.create_task(
        install_shipped(service, database, settings.plugins_shipped, settings.plugins_shipped_dir or SHIPPED_DIR),
        name="plugins-shipped",
    )
    return PluginDomain(fleet=fleet, service=service, _shipped=shipped)
