"""How a domain hands its gRPC services to the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import grpc


@dataclass(frozen=True, slots=True)
class ServiceRegistration:
    """A servicer to add to the server, and the full service name reflection lists."""

    add: Callable[[grpc.aio.Server], None]
    name: str


def register(messages: ModuleType, services: ModuleType, service: str, servicer: object) -> ServiceRegistration:
    """The registration of `servicer` for `service`, from its generated *_pb2 and *_pb2_grpc modules.

    >>> register(system_pb2, system_pb2_grpc, "SystemService", SystemServicer(system))  # doctest: +SKIP
    """
    add = getattr(services, f"add_{service}Servicer_to_server")
    return ServiceRegistration(
        add=lambda server: add(servicer, server),
        name=messages.DESCRIPTOR.services_by_name[service].full_name,
    )
