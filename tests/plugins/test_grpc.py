"""PluginService over gRPC, as the typed clients call it: every RPC, WatchPluginRoutes as the
bridge follows it, and a plain user refused."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from relais.options.v1 import options_pb2
from relais.v1 import plugins_pb2, plugins_pb2_grpc

from tests.support.live import LiveStack

ADMIN = [("authorization", "Bearer admin-token")]
USER = [("authorization", "Bearer user-token")]


@pytest.fixture
def plugins(stack: LiveStack) -> Iterator[plugins_pb2_grpc.PluginServiceStub]:
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield plugins_pb2_grpc.PluginServiceStub(channel)


@pytest.mark.slow
def test_every_rpc(plugins: plugins_pb2_grpc.PluginServiceStub, hello_bundle: bytes, tmp_path: Path) -> None:
    bundle = options_pb2.UploadedFile(filename="hello.zip", data=hello_bundle)
    uploaded = plugins.UploadPlugin(plugins_pb2.UploadPluginRequest(file=bundle), metadata=ADMIN, timeout=120)
    assert (uploaded.id, uploaded.status, uploaded.plugin.state) == (
        "hello",
        "installed",
        plugins_pb2.PLUGIN_STATE_INSTALLED,
    )
    try:
        named = {"plugin_id": "hello"}
        enabled = plugins.EnablePlugin(plugins_pb2.EnablePluginRequest(**named), metadata=ADMIN, timeout=120)
        assert enabled.state == plugins_pb2.PLUGIN_STATE_RUNNING and enabled.active
        listing = plugins.ListPlugins(plugins_pb2.ListPluginsRequest(active_only=True), metadata=ADMIN)
        assert [entry.name for entry in listing.plugins] == ["hello"] and listing.total == 1
        assert plugins.GetPlugin(plugins_pb2.GetPluginRequest(**named), metadata=ADMIN).api_prefix == "/hello"
        stopped = plugins.StopPlugin(plugins_pb2.StopPluginRequest(**named), metadata=ADMIN, timeout=60)
        assert stopped.state == plugins_pb2.PLUGIN_STATE_STOPPED
        started = plugins.StartPlugin(plugins_pb2.StartPluginRequest(**named), metadata=ADMIN, timeout=120)
        assert started.state == plugins_pb2.PLUGIN_STATE_RUNNING
        reloaded = plugins.ReloadPlugin(plugins_pb2.ReloadPluginRequest(**named), metadata=ADMIN, timeout=120)
        assert reloaded.status == "reloaded" and reloaded.plugin.last_reload.seconds > 0
        logs = plugins.GetPluginLogs(plugins_pb2.GetPluginLogsRequest(tail=3, **named), metadata=ADMIN)
        assert len(logs.lines) == 3
        stats = plugins.GetPluginStats(plugins_pb2.GetPluginStatsRequest(**named), metadata=ADMIN)
        assert stats.pid > 0 and stats.state == plugins_pb2.PLUGIN_STATE_RUNNING
        disabled = plugins.DisablePlugin(plugins_pb2.DisablePluginRequest(**named), metadata=ADMIN, timeout=60)
        assert disabled.state == plugins_pb2.PLUGIN_STATE_DISABLED
        plugins.DeletePlugin(plugins_pb2.DeletePluginRequest(**named), metadata=ADMIN, timeout=60)
        (tmp_path / "hello.zip").write_bytes(hello_bundle)
        installed = plugins.InstallPlugin(
            plugins_pb2.InstallPluginRequest(source=str(tmp_path / "hello.zip"), name="hello"), metadata=ADMIN
        )
        assert installed.status == "installed"
    finally:
        plugins.DeletePlugin(plugins_pb2.DeletePluginRequest(plugin_id="hello"), metadata=ADMIN, timeout=60)


def test_errors_carry_their_codes(plugins: plugins_pb2_grpc.PluginServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        plugins.GetPlugin(plugins_pb2.GetPluginRequest(plugin_id="nope"), metadata=ADMIN)
    with pytest.raises(grpc.RpcError) as refused:
        plugins.UploadPlugin(
            plugins_pb2.UploadPluginRequest(file=options_pb2.UploadedFile(data=b"not a zip")), metadata=ADMIN
        )
    with pytest.raises(grpc.RpcError) as denied:
        plugins.ListPlugins(plugins_pb2.ListPluginsRequest(), metadata=USER)

    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "not a ZIP" in refused.value.details()
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_the_route_table_stream_follows_loads_and_unloads(
    plugins: plugins_pb2_grpc.PluginServiceStub, hello_bundle: bytes
) -> None:
    tables: queue.Queue[plugins_pb2.PluginRouteTable] = queue.Queue()
    watch = plugins.WatchPluginRoutes(plugins_pb2.WatchPluginRoutesRequest())

    def read() -> None:
        try:
            for table in watch:
                tables.put(table)
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    try:
        first = tables.get(timeout=10)
        assert list(first.plugins) == []
        bundle = options_pb2.UploadedFile(data=hello_bundle)
        plugins.UploadPlugin(plugins_pb2.UploadPluginRequest(file=bundle), metadata=ADMIN, timeout=120)
        plugins.EnablePlugin(plugins_pb2.EnablePluginRequest(plugin_id="hello"), metadata=ADMIN, timeout=120)
        loaded = tables.get(timeout=30)
        plugins.StopPlugin(plugins_pb2.StopPluginRequest(plugin_id="hello"), metadata=ADMIN, timeout=60)
        unloaded = tables.get(timeout=30)
    finally:
        watch.cancel()
        plugins.DeletePlugin(plugins_pb2.DeletePluginRequest(plugin_id="hello"), metadata=ADMIN, timeout=60)

    [routes] = loaded.plugins
    assert (routes.plugin_id, routes.api_prefix, list(routes.services)) == (
        "hello",
        "/hello",
        ["hello.v1.HelloService"],
    )
    assert routes.descriptor_set and len(routes.sha256) == 64
    assert loaded.generation > first.generation and list(unloaded.plugins) == []
