"""PluginService over gRPC: convert, delegate, convert back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from relais.v1 import plugins_pb2, plugins_pb2_grpc

from server.convert import timestamp
from server.errors import FieldViolation, ValidationFailed
from server.plugins.service import PluginService, PluginStatsView, PluginView

STATES = {
    "installed": plugins_pb2.PLUGIN_STATE_INSTALLED,
    "disabled": plugins_pb2.PLUGIN_STATE_DISABLED,
    "starting": plugins_pb2.PLUGIN_STATE_STARTING,
    "running": plugins_pb2.PLUGIN_STATE_RUNNING,
    "stopped": plugins_pb2.PLUGIN_STATE_STOPPED,
    "failed": plugins_pb2.PLUGIN_STATE_FAILED,
}
MESSAGES = {
    "installed": "Plugin installed",
    "updated": "Plugin updated to the new version",
    "unchanged": "This version of the plugin is already installed",
}


def plugin_message(view: PluginView) -> plugins_pb2.Plugin:
    manifest = view.manifest
    return plugins_pb2.Plugin(
        id=view.id,
        name=manifest.name,
        version=manifest.version,
        author=manifest.author,
        description=manifest.description,
        active=view.active,
        enabled=view.enabled,
        state=STATES[view.state],
        api_prefix=manifest.api_prefix,
        tags=manifest.tags,
        routes=list(dict.fromkeys(route.path for route in view.routes)),
        dependencies=manifest.dependencies,
        loaded_at=timestamp(view.loaded_at),
        last_reload=timestamp(view.last_reload),
        permissions=manifest.permissions,
        tools=[tool.name for tool in manifest.tools],
        actions=[
            plugins_pb2.PluginAction(
                name=f"{view.id}.{action.name}",
                description=action.description,
                params_schema=json.dumps(action.params_schema),
            )
            for action in manifest.actions
        ],
        source=view.source,
        signed_by=view.signed_by,
        sha256=view.sha256,
        installed_at=timestamp(view.installed_at),
        error=view.error,
        restarts=view.restarts,
        endpoints=[plugins_pb2.PluginRoute(method=r.method, path=r.path, rpc=r.rpc) for r in view.routes],
    )


def _stats_message(stats: PluginStatsView) -> plugins_pb2.PluginStats:
    latency = stats.latency_ms
    return plugins_pb2.PluginStats(
        id=stats.id,
        state=STATES[stats.state],
        calls=stats.calls,
        errors=stats.errors,
        latency_ms=plugins_pb2.LatencyPercentiles(p50=latency.p50, p95=latency.p95, p99=latency.p99, max=latency.max),
        restarts=stats.restarts,
        cpu_seconds=stats.cpu_seconds,
        memory_bytes=stats.memory_bytes,
        uptime_seconds=stats.uptime_seconds,
        pid=stats.pid,
        memory_limit_bytes=stats.memory_limit_bytes,
        open_files_limit=stats.open_files_limit,
    )


def _installed(view: PluginView, status: str) -> plugins_pb2.InstallPluginResponse:
    return plugins_pb2.InstallPluginResponse(
        id=view.id, status=status, message=MESSAGES[status], plugin=plugin_message(view)
    )


class PluginServicer(plugins_pb2_grpc.PluginServiceServicer):
    def __init__(self, plugins: PluginService) -> None:
        self._plugins = plugins

    async def ListPlugins(
        self, request: plugins_pb2.ListPluginsRequest, context: Any
    ) -> plugins_pb2.ListPluginsResponse:
        page = await self._plugins.list_plugins(
            active_only=request.active_only, skip=request.skip, offset=request.offset, limit=request.limit
        )
        items = [plugin_message(view) for view in page.items]
        return plugins_pb2.ListPluginsResponse(
            total=page.total,
            items=items,
            plugins=[plugins_pb2.PluginEntry(name=item.id, state=item.state, meta=item) for item in items],
            has_more=page.has_more,
        )

    async def GetPlugin(self, request: plugins_pb2.GetPluginRequest, context: Any) -> plugins_pb2.Plugin:
        return plugin_message(await self._plugins.get(request.plugin_id))

    async def InstallPlugin(
        self, request: plugins_pb2.InstallPluginRequest, context: Any
    ) -> plugins_pb2.InstallPluginResponse:
        if not request.source:
            raise ValidationFailed([FieldViolation(field="source", message="is required (a local path or a git URL)")])
        view, status = await self._plugins.install(request.source, name=request.name, version=request.version)
        return _installed(view, status)

    async def UploadPlugin(
        self, request: plugins_pb2.UploadPluginRequest, context: Any
    ) -> plugins_pb2.InstallPluginResponse:
        if not request.HasField("file") or not request.file.data:
            raise ValidationFailed([FieldViolation(field="file", message="is required (the bundle ZIP)")])
        view, status = await self._plugins.upload(request.file.data)
        return _installed(view, status)

    async def EnablePlugin(self, request: plugins_pb2.EnablePluginRequest, context: Any) -> plugins_pb2.Plugin:
        return plugin_message(await self._plugins.enable(request.plugin_id))

    async def DisablePlugin(self, request: plugins_pb2.DisablePluginRequest, context: Any) -> plugins_pb2.Plugin:
        return plugin_message(await self._plugins.disable(request.plugin_id))

    async def StartPlugin(self, request: plugins_pb2.StartPluginRequest, context: Any) -> plugins_pb2.Plugin:
        return plugin_message(await self._plugins.start(request.plugin_id))

    async def StopPlugin(self, request: plugins_pb2.StopPluginRequest, context: Any) -> plugins_pb2.Plugin:
        return plugin_message(await self._plugins.stop(request.plugin_id))

    async def ReloadPlugin(
        self, request: plugins_pb2.ReloadPluginRequest, context: Any
    ) -> plugins_pb2.ReloadPluginResponse:
        view, status = await self._plugins.reload(request.plugin_id)
        return plugins_pb2.ReloadPluginResponse(
            id=view.id, status=status, message="Plugin reloaded", plugin=plugin_message(view)
        )

    async def DeletePlugin(
        self, request: plugins_pb2.DeletePluginRequest, context: Any
    ) -> plugins_pb2.DeletePluginResponse:
        await self._plugins.delete(request.plugin_id)
        return plugins_pb2.DeletePluginResponse()

    async def GetPluginLogs(
        self, request: plugins_pb2.GetPluginLogsRequest, context: Any
    ) -> plugins_pb2.GetPluginLogsResponse:
        await self._plugins.get(request.plugin_id)
        lines, dropped = self._plugins.logs(request.plugin_id, request.tail if request.HasField("tail") else None)
        return plugins_pb2.GetPluginLogsResponse(
            id=request.plugin_id,
            lines=[
                plugins_pb2.PluginLogLine(time=timestamp(_utc(line.time)), stream=line.stream, text=line.text)
                for line in lines
            ],
            dropped=dropped,
        )

    async def GetPluginStats(self, request: plugins_pb2.GetPluginStatsRequest, context: Any) -> plugins_pb2.PluginStats:
        return _stats_message(await self._plugins.stats(request.plugin_id))

    async def WatchPluginRoutes(
        self, request: plugins_pb2.WatchPluginRoutesRequest, context: Any
    ) -> AsyncIterator[plugins_pb2.PluginRouteTable]:
        async for generation, plugins in self._plugins.fleet.routes.watch():
            yield plugins_pb2.PluginRouteTable(
                generation=generation,
                plugins=[
                    plugins_pb2.PluginRoutes(
                        plugin_id=plugin.plugin_id,
                        version=plugin.version,
                        api_prefix=plugin.api_prefix,
                        services=plugin.services,
                        descriptor_set=plugin.descriptor_set,
                        sha256=plugin.sha256,
                    )
                    for plugin in plugins
                ],
            )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
