"""Choosing a TCP port for a child process to bind."""

from __future__ import annotations

import random
import socket

# Below Linux's default ephemeral range (32768-60999): a port picked there can be handed to
# an outgoing connection (to PostgreSQL, Redis, a model) between the pick and the child's
# bind, which made "address already in use" a rare start-up failure.
_LOW, _HIGH = 20000, 32000


def unused_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on now, outside the ephemeral range.

    Another process may still take it before the caller binds it; outside the ephemeral
    range only another deliberate listener can.
    """
    for _ in range(200):
        port = random.randrange(_LOW, _HIGH)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no unused port on {host} between {_LOW} and {_HIGH}")
