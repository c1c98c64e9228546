"""Assemble and run the grpc.aio server: storage, services, interceptors, lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from relais.v1 import (
    access_pb2,
    access_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

from server.access import AccessServicer
from server.agents.service import AgentService
from server.agents.servicer import AgentServicer
from server.auth import AccessPolicy, Authenticator, Credentials, Principal
from server.chats.events import LocalRooms, MessageEvents, RedisRooms
from server.chats.service import ChatService
from server.chats.servicer import ChatServicer, ConversationServicer, MessageServicer
from server.config import Settings
from server.identity import IdentityDomain, start_identity
from server.inference.domain import InferenceDomain, start_inference
from server.interceptors import chain
from server.interceptors.auth import AuthScope
from server.interceptors.errors import ErrorScope
from server.interceptors.observe import ObserveScope
from server.interceptors.ratelimit import RateLimitScope
from server.interceptors.request_id import RequestIdScope
from server.observability import DATA_DIR_FREE_BYTES
from server.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from server.registration import ServiceRegistration, register
from server.retrieval.domain import RetrievalDomain, start_retrieval
from server.scheduler.engine import Scheduler
from server.storage import Database, create_database
from server.system.probes import RedisProbe, disk_usage
from server.system.service import SystemService
from server.system.servicer import SystemServicer

log = logging.getLogger("relais.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class FirstAuthenticator:
    """Asks each authenticator in turn; the first to name a principal wins."""

    def __init__(self, *authenticators: Authenticator) -> None:
        self._authenticators = authenticators

    async def authenticate(self, credentials: Credentials) -> Principal | None:
        for authenticator in self._authenticators:
            principal = await authenticator.authenticate(credentials)
            if principal is not None:
                return principal
        return None


class RelaisServer:
    """The gRPC half of Relais.

    server = RelaisServer(settings)
    port = await server.start()
    ...
    await server.stop()
    """

    def __init__(
        self,
        settings: Settings,
        *,
        authenticator: Authenticator | None = None,
        extra_services: Sequence[ServiceRegistration] = (),
    ) -> None:
        self.settings = settings
        self.database: Database = create_database(settings.sqlalchemy_url)
        self.scheduler = Scheduler()
        self.redis = RedisProbe(settings.redis_url) if settings.redis_url else None
        self.policy = AccessPolicy(allow_anonymous=settings.allow_anonymous)
        self.limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url, prefix=settings.rate_limit_prefix)
            if settings.redis_url
            else MemoryRateLimiter()
        )
        self.identity: IdentityDomain | None = None
        self.inference: InferenceDomain | None = None
        self.retrieval: RetrievalDomain | None = None
        self.message_events: MessageEvents = RedisRooms(settings.redis_url) if settings.redis_url else LocalRooms()
        self.system = SystemService(
            database=self.database,
            data_dir=settings.data_dir,
            min_free_disk_bytes=settings.min_free_disk_bytes,
            scheduler=self.scheduler,
            redis=self.redis,
        )
        # Tried before the identity domain (tests plug static tokens in here).
        self._extra_authenticator = authenticator
        self._extra_services = tuple(extra_services)
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port: int = 0

    async def start(self) -> int:
        """Migrate, start background tasks, bind and serve. Returns the bound port."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.migrate_on_start:
            await self.database.migrate()
        self.identity = await start_identity(self.settings, self.database, self.limiter)
        self.inference = await start_inference(self.settings)
        self.system.registries.dependencies["inference"] = self.inference.probe
        self.retrieval = start_retrieval(self.settings, self.database)
        if self.settings.retrieval_preload:
            await self.retrieval.preload()
        self.system.registries.dependencies["vector_store"] = self.retrieval.probe
        self.identity.service.user_deletion_hooks.append(self.retrieval.knowledge)
        self.scheduler.add("retrieval-cleanup", self.settings.retrieval_cleanup_seconds, self.retrieval.sweep)
        self.scheduler.add("disk-usage", 30.0, self._sample_disk)
        self.scheduler.start()

        authenticators = [a for a in (self._extra_authenticator, self.identity.service) if a is not None]
        authenticator = FirstAuthenticator(*authenticators)
        settings = self.settings
        rate_limits = RateLimitScope(
            self.limiter,
            self.policy,
            anonymous=RateLimit.parse(settings.rate_limit_anonymous),
            user=RateLimit.parse(settings.rate_limit_user),
            admin=RateLimit.parse(settings.rate_limit_admin),
        )
        server = grpc.aio.server(
            interceptors=[
                chain(
                    RequestIdScope(),
                    ObserveScope(),
                    ErrorScope(),
                    AuthScope(self.policy, authenticator, trusted_proxies=settings.trusted_proxies),
                    rate_limits,
                )
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        services = [
            register(system_pb2, system_pb2_grpc, "SystemService", SystemServicer(self.system)),
            register(access_pb2, access_pb2_grpc, "AccessService", AccessServicer(self.policy, authenticator)),
            *self.identity.registrations(),
            *self.inference.registrations(),
            *self.retrieval.registrations(),
            register(
                agent_pb2,
                agent_pb2_grpc,
                "AgentService",
                AgentServicer(AgentService(self.database, self.retrieval.knowledge)),
            ),
            *self._chat_registrations(),
            *self._extra_services,
        ]
        for service in services:
            service.add(server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [service.name for service in services]
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)

        self.port = server.add_insecure_port(f"{self.settings.host}:{self.settings.grpc_port}")
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC to {self.settings.host}:{self.settings.grpc_port}")
        await server.start()
        self._server = server
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%d", self.settings.host, self.port)
        return self.port

    def _chat_registrations(self) -> list[ServiceRegistration]:
        assert self.inference is not None and self.retrieval is not None
        chats = ChatService(
            self.database,
            self.inference.service,
            self.inference.catalogue,
            self.message_events,
            knowledge=self.retrieval.knowledge,
        )
        return [
            register(chat_pb2, chat_pb2_grpc, "ChatService", ChatServicer(chats)),
            register(chat_pb2, chat_pb2_grpc, "MessageService", MessageServicer(chats)),
            register(chat_pb2, chat_pb2_grpc, "ConversationService", ConversationServicer(chats)),
        ]

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight ones (streams included) finish for `grace`
        seconds, then cancel what is left and release resources."""
        grace = self.settings.shutdown_grace if grace is None else grace
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(grace)
            self._server = None
        await self.scheduler.stop()
        if self.inference is not None:
            await self.inference.close()
            self.inference = None
        if self.retrieval is not None:
            await self.retrieval.close()
            self.retrieval = None
        if self.identity is not None:
            await self.identity.close()
        await self.message_events.close()
        await self.limiter.close()
        if self.redis:
            await self.redis.close()
        await self.database.dispose()
        log.info("gRPC server stopped")

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def _sample_disk(self) -> None:
        DATA_DIR_FREE_BYTES.set(disk_usage(self.settings.data_dir).free_bytes)
