"""How a domain hands its gRPC services to the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc


@dataclass(frozen=True, slots=True)
class ServiceRegistration:
    """A servicer to add to the server, and the full service name reflection lists."""

    add: Callable[[grpc.aio.Server], None]
    name: str
