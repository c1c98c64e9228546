"""Plugin routes: learnt from the server, compiled like Relais' own, swapped in one assignment.

The bridge knows nothing of plugins but what PluginService.WatchPluginRoutes streams: for each
plugin running on the server, its api_prefix and the descriptor set of its services. Each set is
compiled by the same binding compiler (bindings.compile_bindings) into the same ProtoRoute and
Transcoder as the contract's routes, so a plugin route parses, calls and answers exactly like a
built-in one; its calls go to the server (which forwards them to the plugin's process). The
compiled table replaces the previous one whole, and /openapi.json is rebuilt with it: a request
sees the old routes or the new ones, never a mixture.

A plugin whose routes fail to compile, leave its prefix or collide with a route of Relais or of
another plugin is left out (and logged); the server refuses such bundles already, this is the
bridge's own guard (the server and the bridge may run different versions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError
from relais.v1 import plugins_pb2
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from bridge.bindings import Binding, compile_bindings
from bridge.httprule import TemplateError
from bridge.openapi import comments_of
from bridge.routes import ProtoRoute, RouteTable, Transcoder
from bridge.upstream import Upstream

log = logging.getLogger("relais.bridge.plugins")

WATCH = "/relais.v1.PluginService/WatchPluginRoutes"


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledPlugin:
    plugin_id: str
    sha256: str
    bindings: tuple[Binding, ...]
    comments: dict[str, str]


def route_key(binding: Binding) -> tuple[str, str]:
    return (binding.http_method, binding.template.regex.pattern)


def first_segment(path: str) -> str:
    return path.split("/")[1].split(":")[0] if path.startswith("/") else ""


def compile_plugin(routes: plugins_pb2.PluginRoutes) -> CompiledPlugin:
    """A plugin's bindings; TemplateError when they break a rule."""
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(routes.descriptor_set)
        pool = descriptor_pool.DescriptorPool()
        for file in files.file:
            pool.Add(file)
        services = [pool.FindServiceByName(name) for name in routes.services]
    except (DecodeError, TypeError, KeyError, ValueError) as error:
        raise TemplateError(f"plugin {routes.plugin_id}: unreadable descriptor set ({error})") from None
    bindings = compile_bindings(services)
    prefix = routes.api_prefix
    for binding in bindings:
        path = binding.template.source
        if not prefix or not (path == prefix or path.startswith((prefix + "/", prefix + ":"))):
            raise TemplateError(f"plugin {routes.plugin_id}: {path} lies outside its prefix {prefix!r}")
    return CompiledPlugin(
        plugin_id=routes.plugin_id,
        sha256=routes.sha256,
        bindings=tuple(bindings),
        comments=comments_of(routes.descriptor_set),
    )


class PluginRoutes(BaseRoute):
    """One entry of the router holding every plugin route; matching picks one of them. The
    table is swapped whole when the plugins' routes change, so a request sees one table."""

    def __init__(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder
        self.table = RouteTable()

    def swap(self, bindings: Sequence[Binding]) -> None:
        ordered = sorted(bindings, key=lambda binding: binding.template.specificity)
        self.table = RouteTable(ProtoRoute(binding, self.transcoder) for binding in ordered)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return self.table.matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The route chosen when matching (in the scope), even if the table was swapped since.
        await self.table.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


class PluginRouteWatcher:
    """Follows the server's plugin route table for as long as the bridge runs."""

    def __init__(
        self,
        upstream: Upstream,
        routes: PluginRoutes,
        *,
        builtin: Sequence[Binding],
        reserved_segments: set[str],
        published: Callable[[list[Binding], dict[str, str]], None],
    ) -> None:
        self._upstream = upstream
        self._routes = routes
        self._builtin_keys = {route_key(binding) for binding in builtin}
        self._reserved = reserved_segments | {first_segment(b.template.source) for b in builtin}
        self._published = published
        self._compiled: dict[tuple[str, str], CompiledPlugin] = {}
        self.generation = -1
        self.changed = asyncio.Event()

    async def run(self) -> None:
        delay = 0.2
        while True:
            wait = delay
            try:
                call = self._upstream.stream_method(
                    WATCH, plugins_pb2.WatchPluginRoutesRequest, plugins_pb2.PluginRouteTable
                )(plugins_pb2.WatchPluginRoutesRequest())
                async for table in call:
                    delay = wait = 0.2
                    self.apply(table)
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                    wait = 60.0  # a server without plugins: look again now and then
                elif error.code() is not grpc.StatusCode.UNAVAILABLE:
                    log.warning("watching plugin routes failed: %s", error.details())
            except Exception:
                log.exception("watching plugin routes failed")
            await asyncio.sleep(wait)
            delay = min(delay * 2, 5.0)

    def apply(self, table: plugins_pb2.PluginRouteTable) -> None:
        plugins = []
        taken: dict[tuple[str, str], str] = {}
        for routes in table.plugins:
            try:
                compiled = self._compile(routes)
                self._check_collisions(compiled, taken)
            except TemplateError as error:
                log.warning("plugin %s's routes are left out: %s", routes.plugin_id, error)
                continue
            taken.update({route_key(binding): compiled.plugin_id for binding in compiled.bindings})
            plugins.append(compiled)
        self._compiled = {(plugin.plugin_id, plugin.sha256): plugin for plugin in plugins}
        bindings = [binding for plugin in plugins for binding in plugin.bindings]
        comments = {name: text for plugin in plugins for name, text in plugin.comments.items()}
        self._routes.swap(bindings)
        self._published(bindings, comments)
        self.generation = table.generation
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def _compile(self, routes: plugins_pb2.PluginRoutes) -> CompiledPlugin:
        cached = self._compiled.get((routes.plugin_id, routes.sha256))
        return cached if cached is not None else compile_plugin(routes)

    def _check_collisions(self, compiled: CompiledPlugin, taken: dict[tuple[str, str], str]) -> None:
        for binding in compiled.bindings:
            path = binding.template.source
            if first_segment(path) in self._reserved or route_key(binding) in self._builtin_keys:
                raise TemplateError(f"{binding.http_method} {path} collides with Relais' own routes")
            owner = taken.get(route_key(binding))
            if owner is not None:
                raise TemplateError(f"{binding.http_method} {path} collides with plugin {owner}")
