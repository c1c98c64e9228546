"""The start-up protocol between Relais and a plugin process, after HashiCorp go-plugin.

Relais starts the process with MAGIC_COOKIE_KEY=MAGIC_COOKIE_VALUE in its environment (a plugin
run by hand says it must be started by Relais instead of hanging), and the directory where the
plugin puts its sockets in SOCKET_DIR_KEY. Once the plugin serves gRPC there, it prints one line
on stdout:

    1|1|unix|/run/relais-plugin-x/grpc.sock|grpc

core protocol version | this protocol's version | network | address | protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "RELAIS_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "0b5e1c3a7f9d4e2a8c6b1d0f3e5a7c9b"
SOCKET_DIR_KEY = "RELAIS_PLUGIN_SOCKET_DIR"
BUNDLE_DIR_KEY = "RELAIS_PLUGIN_DIR"
WORK_DIR_KEY = "RELAIS_PLUGIN_WORK_DIR"
PLUGIN_ID_KEY = "RELAIS_PLUGIN_ID"
GRPC_SOCKET = "grpc.sock"
MCP_SOCKET = "mcp.sock"


class HandshakeError(ValueError):
    """A line that is not a valid handshake."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    network: str
    address: str
    core_version: int = CORE_PROTOCOL_VERSION
    app_version: int = APP_PROTOCOL_VERSION
    protocol: str = "grpc"

    def line(self) -> str:
        return f"{self.core_version}|{self.app_version}|{self.network}|{self.address}|{self.protocol}"

    @property
    def target(self) -> str:
        """The gRPC channel target."""
        return f"unix:{self.address}" if self.network == "unix" else self.address


def parse(line: str) -> Handshake:
    """The handshake a plugin printed; HandshakeError says what is wrong with it."""
    parts = line.strip().split("|")
    if len(parts) != 5:
        raise HandshakeError(f"expected 'core|app|network|address|protocol', got {line.strip()[:200]!r}")
    core, app, network, address, protocol = parts
    if core != str(CORE_PROTOCOL_VERSION):
        raise HandshakeError(f"core protocol version {core!r}; Relais speaks {CORE_PROTOCOL_VERSION}")
    if app != str(APP_PROTOCOL_VERSION):
        raise HandshakeError(f"plugin protocol version {app!r}; this Relais speaks {APP_PROTOCOL_VERSION}")
    if network != "unix" or not address.startswith("/"):
        raise HandshakeError(f"network {network!r} at {address[:200]!r}; plugins serve on a Unix socket")
    if protocol != "grpc":
        raise HandshakeError(f"protocol {protocol!r}; plugins speak grpc")
    return Handshake(network=network, address=address)
