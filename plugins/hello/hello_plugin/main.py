"""The hello plugin: a greeting as a route, an MCP tool and a task action."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from relais_plugin import Caller, Plugin, PluginError

plugin = Plugin()
VERSION = json.loads((Path(os.environ.get("RELAIS_PLUGIN_DIR", ".")) / "manifest.json").read_text())["version"]


def greeting(name: str) -> str:
    if not name or len(name) > 100:
        raise PluginError("INVALID_ARGUMENT", "name must be 1 to 100 characters")
    return f"Hello, {name}!"


@plugin.rpc("hello.v1.HelloService", "Greet")
async def greet_route(request: Any, caller: Caller) -> dict[str, str]:
    return {"message": greeting(request.name), "version": VERSION}


@plugin.rpc("hello.v1.HelloService", "WhoAmI")
async def who_am_i(request: Any, caller: Caller) -> dict[str, Any]:
    return {
        "subject": caller.subject,
        "user_id": caller.user_id or 0,
        "roles": sorted(caller.roles),
        "metadata_keys": sorted(caller.received),
        "environment": sorted(os.environ),
    }


@plugin.tool(description="Greet someone by name")
def greet(name: str) -> str:
    return greeting(name)


@plugin.action("greet")
async def greet_action(params: dict[str, Any], caller: Caller) -> dict[str, str]:
    return {"message": greeting(params["name"]), "for": caller.subject}


if __name__ == "__main__":
    plugin.run()
