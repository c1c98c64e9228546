"""Who the HTTP client is, and how the bridge vouches for it to the server.

The client's address is the TCP peer's, unless that peer is a proxy the operator listed
(`RELAIS_TRUSTED_PROXIES`, none by default): then the right-most address of
`X-Forwarded-For` that is not itself a trusted proxy. A header sent by anyone else is
ignored, so a client cannot reset its own rate limits by naming another address.

The bridge hands that address to the server as `x-forwarded-for`, with its shared secret
(`x-relais-bridge`): the server believes a forwarded address only from a peer that proves
to be the bridge or that it lists as a proxy itself (server/auth.py).

    forwarding = Forwarding(["10.0.0.0/8"], bridge_secret="…")
    forwarding.client_address(scope)      # "203.0.113.9"
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

# The metadata key carrying the bridge's secret; the server reads it in server/auth.py.
BRIDGE_SECRET_KEY = "x-relais-bridge"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """'10.0.0.5', '10.0.0.0/8', '::1' → networks; raises ValueError on anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str, networks: tuple[Network, ...]) -> str:
    """The client behind `peer`: the right-most hop of `forwarded_for` not in `networks`,
    when `peer` is in `networks`; `peer` itself otherwise."""
    if not is_trusted(peer, networks) or not forwarded_for.strip():
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


class Forwarding:
    def __init__(self, trusted_proxies: Iterable[str] = (), *, bridge_secret: str | None = None) -> None:
        self._networks = parse_networks(trusted_proxies)
        self._secret = bridge_secret

    def client_address(self, scope: Any) -> str:
        """The client of an ASGI connection (HTTP or WebSocket)."""
        client = scope.get("client") if isinstance(scope, dict) else None
        peer = str(client[0]) if client else ""
        forwarded = ""
        for name, value in scope.get("headers", ()) if isinstance(scope, dict) else ():
            if name == b"x-forwarded-for":
                forwarded = f"{forwarded},{value.decode('latin-1')}" if forwarded else value.decode("latin-1")
        return forwarded_client(peer, forwarded, self._networks)

    def metadata(self, scope: Any) -> list[tuple[str, str]]:
        """The client's address as gRPC metadata, vouched for by the bridge's secret."""
        address = self.client_address(scope)
        pairs = [("x-forwarded-for", address)] if address and address.isprintable() else []
        if self._secret:
            pairs.append((BRIDGE_SECRET_KEY, self._secret))
        return pairs
