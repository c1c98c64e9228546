"""The tasks plugin: routes, MCP tools and task actions over one store. A caller only ever sees
their own list (Relais tells the plugin who calls)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from relais_plugin import Caller, Plugin, PluginError, caller_of

from tasks_plugin.store import Store

plugin = Plugin()
store = Store(Path(os.environ.get("RELAIS_PLUGIN_WORK_DIR", ".")) / "tasks.db")
SERVICE = "tasks.v1.TaskListService"


def owner(caller: Caller) -> str:
    if not caller.subject or caller.anonymous:
        raise PluginError("PERMISSION_DENIED", "a to-do list belongs to a signed-in user")
    return caller.subject


def checked_title(title: str) -> str:
    title = title.strip()
    if not 1 <= len(title) <= 200:
        raise PluginError("INVALID_ARGUMENT", "title must be 1 to 200 characters")
    return title


@plugin.rpc(SERVICE, "ListItems")
async def list_items(request: Any, caller: Caller) -> dict[str, Any]:
    items = store.items(owner(caller), include_done=request.include_done)
    return {"total": len(items), "items": [item.as_json() for item in items]}


@plugin.rpc(SERVICE, "AddItem")
async def add_item(request: Any, caller: Caller) -> dict[str, Any]:
    return store.add(owner(caller), checked_title(request.title)).as_json()


@plugin.rpc(SERVICE, "CompleteItem")
async def complete_item(request: Any, caller: Caller) -> dict[str, Any]:
    item = store.complete(owner(caller), request.id)
    if item is None:
        raise PluginError("NOT_FOUND", f"no item {request.id} in your list")
    return item.as_json()


@plugin.rpc(SERVICE, "DeleteItem")
async def delete_item(request: Any, caller: Caller) -> dict[str, Any]:
    if not store.delete(owner(caller), request.id):
        raise PluginError("NOT_FOUND", f"no item {request.id} in your list")
    return {}


@plugin.tool(description="The caller's to-do items (open ones only unless include_done)")
def list_tasks(ctx: Context, include_done: bool = False) -> list[dict[str, Any]]:
    return [item.as_json() for item in store.items(owner(caller_of(ctx)), include_done=include_done)]


@plugin.tool(description="Add an item to the caller's to-do list")
def add_task(title: str, ctx: Context) -> dict[str, Any]:
    return store.add(owner(caller_of(ctx)), checked_title(title)).as_json()


@plugin.tool(description="Mark one of the caller's to-do items done")
def complete_task(id: int, ctx: Context) -> dict[str, Any]:
    item = store.complete(owner(caller_of(ctx)), id)
    if item is None:
        raise PluginError("NOT_FOUND", f"no item {id} in your list")
    return item.as_json()


@plugin.action("add")
async def add_action(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return store.add(owner(caller), checked_title(params["title"])).as_json()


@plugin.action("purge_done")
async def purge_done(params: dict[str, Any], caller: Caller) -> dict[str, int]:
    return {"removed": store.purge_done(owner(caller), params["older_than_days"])}


if __name__ == "__main__":
    plugin.run()
