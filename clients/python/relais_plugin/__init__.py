"""relais-plugin: write a Relais plugin in Python.

A plugin is a process Relais starts and talks to over gRPC on a Unix socket (see handshake.py).
This package does that side: the handshake, the health service, its own gRPC services from the
bundle's descriptor set, task actions and MCP tools. Guide: docs/plugins.md.
"""

from relais_plugin.caller import Caller
from relais_plugin.plugin import Plugin, PluginError, caller_of

__all__ = ["Caller", "Plugin", "PluginError", "caller_of"]
