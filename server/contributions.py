"""What running plugins contribute to the other domains: their MCP tools to the tool registry,
their task actions to the scheduler's action registry.

Plugins start, reload and stop at any time, on this replica or (through the plugins table) on
another; a small loop keeps both registries in step with the plugins running here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.plugins import PluginDomain
from server.tasks.actions import ActionRegistry
from server.tools.registry import ToolRegistry
from server.tools.sources import SourceSpec

log = logging.getLogger("relais.plugins")

# Seconds between two looks at the running plugins.
SYNC_EVERY = 2.0


class PluginContributions:
    def __init__(self, plugins: PluginDomain, tools: ToolRegistry, actions: ActionRegistry) -> None:
        self._plugins = plugins
        self._tools = tools
        self._actions = actions
        self._sources: dict[str, tuple[str, ...]] = {}  # source name → the plugin's declared tools
        self._action_names: dict[str, str] = {}  # action name → its plugin
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                log.exception("could not bring plugin tools and actions in step")
            await asyncio.sleep(SYNC_EVERY)

    async def sync(self) -> None:
        """Add what running plugins offer and is not registered; remove what is gone."""
        running = {source.name: source for source in self._plugins.tool_sources()}
        for name in [name for name in self._sources if name not in running]:
            del self._sources[name]
            await self._tools.remove_source(name)
        for name, source in running.items():
            if self._sources.get(name) == source.tools:
                continue
            if name in self._sources:  # reloaded with other tools
                await self._tools.remove_source(name)
            spec = SourceSpec(
                name=name, kind="plugin", open=source.session, category="plugin", per_caller=source.session
            )
            await self._tools.add_source(spec)
            self._sources[name] = source.tools
        offered = {action.name: action for action in self._plugins.actions()}
        for name in [name for name in self._action_names if name not in offered]:
            del self._action_names[name]
            self._actions.remove(name)
        for name, action in offered.items():
            if name in self._action_names:
                continue
            plugin = name.split(".", 1)[0]  # plugin actions are named "<plugin id>.<action>"
            self._actions.add_plugin_action(
                plugin=plugin,
                name=name,
                description=action.description,
                params_schema=action.params_schema,
                run=action.run,
            )
            self._action_names[name] = plugin

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
