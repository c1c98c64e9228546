"""Assemble and run the grpc.aio server: storage, services, interceptors, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import TracerProvider
from relais.v1 import access_pb2, access_pb2_grpc

from server import tracing
from server.access import AccessServicer
from server.agent.loop import AgentLimits, AgentLoop
from server.agents.domain import AgentsDomain, start_agents
from server.auth import AccessPolicy, Authenticator, Credentials, ForwardingTrust, Principal
from server.backup.domain import BackupDomain, start_backup
from server.backup.recent_logs import RecentLogs
from server.chats.domain import ChatsDomain, start_chats
from server.chats.events import ChatEvents
from server.config import Settings
from server.contributions import PluginContributions
from server.events.domain import EventsDomain, start_events
from server.history.domain import HistoryDomain, start_history
from server.idempotency.service import IdempotencyKeys
from server.identity import IdentityDomain, start_identity
from server.inference.domain import InferenceDomain, start_inference
from server.inprocess import InProcessChannel, local_handlers
from server.interceptors import chain
from server.interceptors.auth import AuthScope
from server.interceptors.errors import ErrorScope
from server.interceptors.idempotency import IdempotencyInterceptor
from server.interceptors.observe import ObserveScope
from server.interceptors.ratelimit import RateLimitScope
from server.interceptors.request_id import RequestIdScope
from server.interceptors.sessions import SessionScope
from server.lifecycle import STEP_TIMEOUT, Drain, everything, working
from server.openai_api.domain import OpenAIDomain, start_openai
from server.plugins import PluginDomain, start_plugins
from server.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from server.registration import ServiceRegistration, register
from server.retrieval.domain import RetrievalDomain, start_retrieval
from server.storage import Database, create_database
from server.system.domain import SystemDomain, start_system
from server.tasks.actions.tools import ToolInvoker
from server.tasks.domain import TasksDomain
from server.tasks.startup import TaskParts, start_tasks
from server.tasks.statuses import TaskStatuses
from server.tools.config import ToolSettings
from server.tools.domain import ToolsDomain, start_tools
from server.tools.invoker import RegistryInvoker
from server.tools.registry import ToolRegistry

log = logging.getLogger("relais.server")
# Seconds start-up waits for the embedding model's preload before it serves anyway.
EMBEDDING_PRELOAD_WAIT = 30.0

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Room for the 16 KiB of HTTP headers the bridge accepts and forwards as metadata.
    ("grpc.max_metadata_size", 64 * 1024),
    ("grpc.so_reuseport", 0),
]
# The least `relais serve` waits for dependencies to close (see _release): it gives them what is
# left of the shutdown grace plus a second, and this much when nothing is.
RELEASE_TIMEOUT = 0.1


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

    Each domain is started by its package's start_<domain>(), which returns a `<X>Domain`: its
    service(s), `registrations()` (its gRPC services) and, when it holds resources, `close()`.
    """

    # The domains, in the order start() starts them; None until then.
    system: SystemDomain | None = None
    # Live updates, across replicas when Redis is configured.
    events: EventsDomain | None = None
    history: HistoryDomain | None = None
    identity: IdentityDomain | None = None
    inference: InferenceDomain | None = None
    retrieval: RetrievalDomain | None = None
    # Exports and imports (the tasks' backup.export action among their callers).
    backup: BackupDomain | None = None
    # Plugins: processes of their own, their methods served through a proxy on this server.
    plugins: PluginDomain | None = None
    agents: AgentsDomain | None = None
    chats: ChatsDomain | None = None
    tools: ToolsDomain | None = None
    openai: OpenAIDomain | None = None
    tasks: TasksDomain | None = None
    # Running plugins' tools and task actions, kept in their registries (server/contributions.py).
    contributions: PluginContributions | None = None

    def __init__(
        self,
        settings: Settings,
        *,
        authenticator: Authenticator | None = None,
        extra_services: Sequence[ServiceRegistration] = (),
        tracer_provider: TracerProvider | None = None,
        tool_invoker: ToolInvoker | None = None,
    ) -> None:
        self.settings = settings
        self.database: Database = create_database(settings.sqlalchemy_url)
        # OpenTelemetry: None (the default) traces nothing and costs nothing (server/tracing.py).
        self.tracer_provider = tracer_provider
        self.policy = AccessPolicy(allow_anonymous=settings.allow_anonymous)
        self.limiter: RateLimiter = (
            RedisRateLimiter(settings.redis_url, prefix=settings.rate_limit_prefix)
            if settings.redis_url
            else MemoryRateLimiter()
        )
        self.idempotency = IdempotencyKeys(self.database)
        # Draining on shutdown: refuses new calls, knows and ends the ones in flight.
        self.drain_scope = Drain(self.policy)
        self._drained = False
        # Calls tools for the tasks' tool.call action (the tool registry).
        self.tool_invoker = tool_invoker
        # This process's recent log lines, for backups' logs/relais.log.
        self.recent_logs = RecentLogs()
        # What the bridge presents with a forwarded client address: configured, or made up for
        # this process (a bridge started beside it is handed the same value).
        self.bridge_secret = (
            settings.bridge_secret.get_secret_value() if settings.bridge_secret else secrets.token_urlsafe(32)
        )
        # Tried before the identity domain (tests plug static tokens in here).
        self._extra_authenticator = authenticator
        self._extra_services = tuple(extra_services)
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._local_handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.port: int = 0

    async def start(self) -> int:
        """Migrate, start the domains, bind and serve. Returns the bound port."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tracing.use(self.tracer_provider)
        tracing.instrument_database(self.database.engine, self.tracer_provider)
        tracing.instrument_http_clients(self.tracer_provider)
        # The embedding model loads (seconds: torch, then the weights) while everything else starts.
        self.retrieval = start_retrieval(self.settings, self.database)
        if self.settings.embedding_preload:
            self.retrieval.preload_embedder()
        if self.settings.migrate_on_start:
            await self.database.migrate()
        await self._start_foundations()
        await self._start_features()
        await self._start_replies()
        await self._start_tasks()
        self._report_to_system()
        assert self.identity is not None and self.plugins is not None
        authenticators = [a for a in (self._extra_authenticator, self.identity.service) if a is not None]
        authenticator = FirstAuthenticator(*authenticators)
        interceptors = self._interceptors(authenticator)
        server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        services = [*self._registrations(authenticator), *self._extra_services]
        for service in services:
            service.add(server)
        # Plugin methods: looked up at each call, as plugins start, reload and stop.
        server.add_generic_rpc_handlers([self.plugins.proxy])
        self._local_handlers = await local_handlers(services, interceptors)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [service.name for service in services]
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        if self.settings.embedding_preload:
            # Serving once the model is in: a replica the balancer sees healthy answers its first
            # search at full speed. Bounded: a model that cannot load is reported, not waited for.
            await self.retrieval.preloaded(within=EMBEDDING_PRELOAD_WAIT)
        return await self._serve(server, names)

    async def _start_foundations(self) -> None:
        """What every other domain stands on: health, the event bus, the journal, identity,
        inference and retrieval."""
        settings, database = self.settings, self.database
        self.system = start_system(settings, database, draining=lambda: self.drain_scope.draining)
        self.events = await start_events(settings)
        self.history = start_history(settings)
        self.identity = await start_identity(settings, database, self.limiter)
        self.identity.service.events = self.events.bus
        self.inference = await start_inference(settings)
        assert self.retrieval is not None  # started first, for its embedding model (start())
        if settings.retrieval_preload:
            await self.retrieval.preload()
        self.identity.service.user_deletion_hooks.append(self.retrieval.knowledge)

    async def _start_features(self) -> None:
        """Backups, plugins and agents, over the foundations."""
        assert self.events is not None and self.inference is not None and self.retrieval is not None
        settings, database, inference = self.settings, self.database, self.inference
        knowledge = self.retrieval.knowledge
        logging.getLogger().addHandler(self.recent_logs)
        self.backup = start_backup(settings, database, knowledge, recent_logs=self.recent_logs.text)
        self.plugins = await start_plugins(settings, database, self.events.bus)
        self.policy.dynamic_rules = self.plugins.proxy.rule_for
        self.agents = start_agents(database, knowledge, model_keys=lambda: inference.catalogue.names)

    async def _start_replies(self) -> None:
        """Whatever writes a reply: the agent loop over the tool registry, chats, the tools
        (some of which read chats), the OpenAI API."""
        assert self.events is not None and self.history is not None and self.inference is not None
        assert self.retrieval is not None and self.agents is not None
        settings, database, inference = self.settings, self.database, self.inference
        knowledge = self.retrieval.knowledge
        registry = ToolRegistry(ToolSettings.of(settings))
        limits = AgentLimits(max_steps=settings.agent_max_steps, timeout=settings.agent_timeout_seconds)
        loop = AgentLoop(inference.service, registry, limits)
        journal = self.history.journal
        chats = start_chats(
            database,
            inference,
            knowledge=knowledge,
            loop=loop,
            bus=self.events.bus,
            journal=journal,
            tools_count=self._tools_count,
        )
        self.chats = chats
        self.tools = await start_tools(
            settings,
            registry,
            knowledge=knowledge,
            conversations=chats.service,
            models=inference.catalogue,
            tasks=TaskStatuses(lambda: self.tasks),
        )
        self.openai = start_openai(
            settings,
            database,
            inference=inference.service,
            retrieval=self.retrieval,
            loop=loop,
            agents=self.agents.service,
            chats=chats.service,
            events=ChatEvents(database, self.events.bus),
            journal=journal,
        )

    async def _start_tasks(self) -> None:
        """Scheduled tasks, last: their actions call every other domain. Then the plugins' tools
        and actions, followed into the registries from now on."""
        assert self.identity is not None and self.retrieval is not None and self.backup is not None
        assert self.chats is not None and self.tools is not None and self.plugins is not None
        assert self.inference is not None and self.system is not None and self.events is not None
        parts = TaskParts(
            knowledge=self.retrieval.knowledge,
            backups=self.backup.service,
            chats=self.chats.service,
            invoker=self.tool_invoker or RegistryInvoker(self.tools.registry),
            plugins=self.plugins,
            idempotency=self.idempotency,
            inference=self.inference.service,
            sample_disk=self.system.sample_disk,
        )
        principals = self.identity.service.principal_of
        self.tasks = await start_tasks(self.settings, self.database, self.events.bus, principals, parts)
        self.contributions = PluginContributions(self.plugins, self.tools.registry, self.tasks.registry)
        self.contributions.start()

    def _report_to_system(self) -> None:
        """What /health reports of the other domains: their probes, names and counts."""
        assert self.system is not None and self.inference is not None and self.retrieval is not None
        assert self.plugins is not None and self.tools is not None
        registries = self.system.service.registries
        registries.dependencies["inference"] = self.inference.probe
        registries.identities["inference"] = self.inference.identity()
        registries.dependencies["vector_store"] = self.retrieval.probe
        registries.identities["vector_store"] = ("milvus" if self.settings.milvus_uri else "milvus-lite", "")
        registries.counters["plugins"] = self.plugins.running_count
        registries.counters["tools"] = self.tools.count
        registries.tool_sources = self.tools.registry.health
        self.system.service.scheduler = self.tasks

    def _interceptors(self, authenticator: Authenticator) -> list[grpc.aio.ServerInterceptor]:
        settings = self.settings
        rate_limits = RateLimitScope(
            self.limiter,
            self.policy,
            anonymous=RateLimit.parse(settings.rate_limit_anonymous),
            user=RateLimit.parse(settings.rate_limit_user),
            admin=RateLimit.parse(settings.rate_limit_admin),
        )
        assert self.events is not None
        scopes = chain(
            RequestIdScope(),
            ObserveScope(),
            ErrorScope(self.database.translate),
            self.drain_scope,
            AuthScope(
                self.policy,
                authenticator,
                trust=ForwardingTrust.of(settings.trusted_proxies, self.bridge_secret),
                limiter=self.limiter,
                failures=RateLimit.parse(settings.rate_limit_auth_failures),
            ),
            SessionScope(self.events.sessions),
            rate_limits,
        )
        return [
            *tracing.server_interceptors(self.tracer_provider),
            scopes,
            # Inside the scopes above: runs for authenticated callers, its refusals are statuses.
            IdempotencyInterceptor(self.idempotency, self.database.translate),
        ]

    def _registrations(self, authenticator: Authenticator) -> list[ServiceRegistration]:
        """Every domain's gRPC services."""
        assert self.system is not None and self.identity is not None and self.inference is not None
        assert self.retrieval is not None and self.agents is not None and self.events is not None
        assert self.chats is not None and self.history is not None and self.openai is not None
        assert self.tools is not None and self.backup is not None and self.plugins is not None
        assert self.tasks is not None
        return [
            *self.system.registrations(),
            register(access_pb2, access_pb2_grpc, "AccessService", AccessServicer(self.policy, authenticator)),
            *self.identity.registrations(),
            *self.inference.registrations(self.history.journal),
            *self.retrieval.registrations(),
            *self.agents.registrations(),
            *self.events.registrations(self.chats.service),
            *self.chats.registrations(),
            *self.history.registrations(),
            self.openai.registration,
            *self.tools.registrations(),
            *self.backup.registrations(),
            *self.plugins.registrations(),
            *self.tasks.registrations(),
        ]

    async def _serve(self, server: grpc.aio.Server, names: list[str]) -> int:
        self.port = server.add_insecure_port(f"{self.settings.host}:{self.settings.grpc_port}")
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC to {self.settings.host}:{self.settings.grpc_port}")
        await server.start()
        self._server = server
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%d", self.settings.host, self.port)
        return self.port

    def in_process_channel(self, fallback: Callable[[], grpc.aio.Channel]) -> InProcessChannel:
        """A channel for the bridge in this process: the same handlers, interceptors included,
        called without a socket (server/inprocess.py). Call after start()."""
        return InProcessChannel(self._local_handlers, fallback, propagate=tracing.inject)

    async def _tools_count(self) -> int:
        counter = self.system.service.registries.counters.get("tools") if self.system is not None else None
        return await counter() if counter is not None else 0

    async def drain(self, grace: float | None = None) -> None:
        """Shut down as promised (see server/lifecycle.py): draining at once, `grace` seconds for
        the calls in flight, then a terminal event for every stream still running."""
        grace = self.settings.shutdown_grace if grace is None else grace
        if self._drained or self._server is None:
            return
        self._drained = True
        self.drain_scope.begin()
        await self._health.enter_graceful_shutdown()
        drain = self.drain_scope
        if await drain.wait(working, grace):
            log.info("drained: every call finished within the grace")
        else:
            ended = self.inference.service.interrupt(drain.error) if self.inference is not None else 0
            await drain.wait(working, STEP_TIMEOUT)
            ended += drain.interrupt(working)
            await drain.wait(working, STEP_TIMEOUT)
            log.warning("shutdown grace (%.1fs) over: %d streams ended with a terminal event", grace, ended)
        if drain.interrupt(everything):
            await drain.wait(everything, STEP_TIMEOUT)

    async def stop(self, grace: float | None = None, *, release_timeout: float | None = None) -> None:
        """Drain (unless done already: `relais serve` drains before it stops the HTTP bridge),
        stop serving, then release resources, waiting at most `release_timeout` seconds for them
        (None: as long as they take)."""
        if self._server is not None:
            await self.drain(grace)
            # Only calls no stream event can end are left (unary ones past the grace): cancelled.
            await self._server.stop(STEP_TIMEOUT)
            self._server = None
        logging.getLogger().removeHandler(self.recent_logs)
        await self._release(release_timeout)
        log.info("gRPC server stopped")

    async def _release(self, within: float | None) -> None:
        """Close every dependency at once. `relais serve` waits `within` seconds at most, as it must
        exit within the shutdown grace plus a second: what is not closed by then (Milvus Lite
        finishing its write-ahead log after SIGINT) is left to finish on its own."""
        if self.contributions is not None:
            await self.contributions.close()
            self.contributions = None
        closing: list[Awaitable[None]] = [self.limiter.close(), self.idempotency.close()]
        domains = (self.events, self.history, self.tasks, self.plugins, self.tools, self.openai, self.inference)
        closing += [domain.close() for domain in (*domains, self.retrieval, self.identity, self.system) if domain]
        self.tasks = None
        self.plugins = self.tools = self.openai = self.inference = self.retrieval = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = [asyncio.ensure_future(work) for work in closing]
        _, pending = await asyncio.wait(tasks, timeout=within)
        for task in pending:
            log.warning("still closing after %.1fs, left to finish on its own: %s", within, task.get_coro())
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("closing failed: %s", task.exception())
        left = None if within is None else max(RELEASE_TIMEOUT, within - (loop.time() - started))
        try:
            await asyncio.wait_for(self.database.dispose(), left)
        except TimeoutError:
            # The process is leaving: its exit closes the pool's connections.
            log.warning("database pool still closing after %.1fs, left to the process exit", within)
        tracing.uninstrument_http_clients(self.tracer_provider)

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()
