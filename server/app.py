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
from relais.v1 import (
    access_pb2,
    access_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    backup_pb2,
    backup_pb2_grpc,
    chat_pb2,
    chat_pb2_grpc,
    history_pb2,
    history_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

from server import tracing
from server.access import AccessServicer
from server.agent.loop import AgentLimits, AgentLoop
from server.agents.service import AgentService
from server.agents.servicer import AgentServicer
from server.auth import AccessPolicy, Authenticator, Credentials, ForwardingTrust, Principal
from server.backup.recent_logs import RecentLogs
from server.backup.service import BackupService
from server.backup.servicer import BackupServicer
from server.chats.events import ChatEvents
from server.chats.service import ChatService
from server.chats.servicer import ChatServicer, ConversationServicer, MessageServicer
from server.config import Settings
from server.contributions import PluginContributions
from server.events import EventBus, create_bus
from server.events.service import LiveEvents
from server.events.servicer import EventServicer, LiveServicer
from server.events.sessions import SessionWatch
from server.history.repository import MemoryJournal, RedisJournal
from server.history.service import Journal
from server.history.servicer import HistoryServicer
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
from server.memory import Trimmer
from server.observability import DATA_DIR_FREE_BYTES
from server.openai_api.domain import OpenAIDomain, start_openai
from server.plugins import PluginDomain, start_plugins
from server.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter, RedisRateLimiter
from server.registration import ServiceRegistration, register
from server.retrieval.domain import RetrievalDomain, start_retrieval
from server.storage import Database, create_database
from server.system.probes import RedisProbe, disk_usage
from server.system.service import SystemService
from server.system.servicer import SystemServicer
from server.tasks.actions.backup import export_action
from server.tasks.actions.housekeeping import housekeeping_action
from server.tasks.actions.prompt import prompt_action
from server.tasks.actions.retrieval import reindex_action
from server.tasks.actions.tools import ToolInvoker, tool_call_action
from server.tasks.domain import TasksDomain
from server.tasks.statuses import TaskStatuses
from server.tools.config import ToolSettings
from server.tools.domain import ToolsDomain, start_tools
from server.tools.invoker import RegistryInvoker
from server.tools.registry import ToolRegistry

log = logging.getLogger("relais.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
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
    """

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
        # Plugins: processes of their own, their methods served through a proxy on this server.
        self.plugins: PluginDomain | None = None
        self.tools: ToolsDomain | None = None
        self.openai: OpenAIDomain | None = None
        # Live updates, across replicas when Redis is configured.
        self.events: EventBus = create_bus(settings.redis_url, channel_prefix=settings.events_channel_prefix)
        self.sessions = SessionWatch(self.events)
        self.journal = Journal(
            RedisJournal(settings.redis_url, ttl=settings.journal_ttl_seconds, prefix=settings.journal_prefix)
            if settings.redis_url
            else MemoryJournal(settings.journal_ttl_seconds, settings.journal_memory_bytes)
        )
        # Set once retrieval is up (exports and imports need its store); the tasks'
        # backup.export action calls self.backups.export_to(directory, keep=N).
        self.backups: BackupService | None = None
        self.idempotency = IdempotencyKeys(self.database)
        # Draining on shutdown: refuses new calls, knows and ends the ones in flight.
        self.drain_scope = Drain(self.policy)
        self._drained = False
        self.chats: ChatService | None = None
        self.tasks: TasksDomain | None = None
        # Calls tools for the tasks' tool.call action (the tool registry).
        self.tool_invoker = tool_invoker
        # Running plugins' tools and task actions, kept in their registries (server/contributions.py).
        self.contributions: PluginContributions | None = None
        # This process's recent log lines, for backups' logs/relais.log.
        self.recent_logs = RecentLogs()
        self.system = SystemService(
            database=self.database,
            data_dir=settings.data_dir,
            min_free_disk_bytes=settings.min_free_disk_bytes,
            redis=self.redis,
            draining=lambda: self.drain_scope.draining,
        )
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
        """Migrate, start background tasks, bind and serve. Returns the bound port."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        tracing.use(self.tracer_provider)
        tracing.instrument_database(self.database.engine, self.tracer_provider)
        tracing.instrument_http_clients(self.tracer_provider)
        if self.settings.migrate_on_start:
            await self.database.migrate()
        await self.events.start()
        await self.sessions.start()
        self.identity = await start_identity(self.settings, self.database, self.limiter)
        self.identity.service.events = self.events
        self.inference = await start_inference(self.settings)
        self.system.registries.dependencies["inference"] = self.inference.probe
        self.system.registries.identities["inference"] = self.inference.identity()
        self.retrieval = start_retrieval(self.settings, self.database)
        if self.settings.retrieval_preload:
            await self.retrieval.preload()
        if self.settings.embedding_preload:
            self.retrieval.preload_embedder()
        self.system.registries.dependencies["vector_store"] = self.retrieval.probe
        self.system.registries.identities["vector_store"] = (
            "milvus" if self.settings.milvus_uri else "milvus-lite",
            "",
        )
        self.identity.service.user_deletion_hooks.append(self.retrieval.knowledge)
        logging.getLogger().addHandler(self.recent_logs)
        self.backups = BackupService(
            self.database, self.retrieval.knowledge, settings=self.settings, recent_logs=self.recent_logs.text
        )
        self.plugins = await start_plugins(self.settings, self.database, self.events)
        self.policy.dynamic_rules = self.plugins.proxy.rule_for
        self.system.registries.counters["plugins"] = self.plugins.running_count

        registry = ToolRegistry(ToolSettings.of(self.settings))
        limits = AgentLimits(max_steps=self.settings.agent_max_steps, timeout=self.settings.agent_timeout_seconds)
        loop = AgentLoop(self.inference.service, registry, limits)
        chats = self._chat_service(loop)
        self.tools = await start_tools(
            self.settings,
            registry,
            knowledge=self.retrieval.knowledge,
            conversations=chats,
            models=self.inference.catalogue,
            tasks=TaskStatuses(lambda: self.tasks),
        )
        self.system.registries.counters["tools"] = self.tools.count
        self.system.registries.tool_sources = self.tools.registry.health
        self.openai = start_openai(
            self.settings,
            self.database,
            inference=self.inference.service,
            retrieval=self.retrieval,
            loop=loop,
            chats=chats,
            events=ChatEvents(self.database, self.events),
            journal=self.journal,
        )

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
        interceptor = chain(
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
            SessionScope(self.sessions),
            rate_limits,
        )
        interceptors = [
            *tracing.server_interceptors(self.tracer_provider),
            interceptor,
            # Inside the scopes above: runs for authenticated callers, its refusals are statuses.
            IdempotencyInterceptor(self.idempotency, self.database.translate),
        ]
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Room for the 16 KiB of HTTP headers the bridge accepts and forwards as metadata.
                ("grpc.max_metadata_size", 64 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        services = [
            register(system_pb2, system_pb2_grpc, "SystemService", SystemServicer(self.system)),
            register(access_pb2, access_pb2_grpc, "AccessService", AccessServicer(self.policy, authenticator)),
            *self.identity.registrations(),
            *self.inference.registrations(self.journal),
            *self.retrieval.registrations(),
            register(
                agent_pb2,
                agent_pb2_grpc,
                "AgentService",
                AgentServicer(AgentService(self.database, self.retrieval.knowledge, model_keys=self._model_keys)),
            ),
            *self._chat_registrations(chats),
            self.openai.registration,
            *self.tools.registrations(),
            register(backup_pb2, backup_pb2_grpc, "BackupService", BackupServicer(self.backups)),
            *self.plugins.registrations(),
            *(await self._start_tasks()),
            *self._extra_services,
        ]
        for service in services:
            service.add(server)
        # Plugin methods: looked up at each call, as plugins start, reload and stop.
        server.add_generic_rpc_handlers([self.plugins.proxy])
        self._local_handlers = await local_handlers(services, interceptors)
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

    def in_process_channel(self, fallback: Callable[[], grpc.aio.Channel]) -> InProcessChannel:
        """A channel for the bridge in this process: the same handlers, interceptors included,
        called without a socket (server/inprocess.py). Call after start()."""
        return InProcessChannel(self._local_handlers, fallback, propagate=tracing.inject)

    async def _tools_count(self) -> int:
        counter = self.system.registries.counters.get("tools")
        return await counter() if counter is not None else 0

    def _model_keys(self) -> list[str]:
        assert self.inference is not None
        return self.inference.catalogue.names

    async def _start_tasks(self) -> list[ServiceRegistration]:
        """Scheduled tasks: the actions, the built-in housekeeping, then the engine and planner."""
        assert self.identity is not None and self.retrieval is not None and self.chats is not None
        self.tasks = tasks = TasksDomain(self.settings, self.database, self.events, self.identity.service.principal_of)
        knowledge = self.retrieval.knowledge
        tasks.registry.add(reindex_action(knowledge))
        tasks.registry.add(export_action(lambda: self.backups, self.settings.data_dir / "backups"))
        tasks.registry.add(prompt_action(self.chats, self.database))
        assert self.tools is not None and self.plugins is not None and self.inference is not None
        tasks.registry.add(tool_call_action(self.tool_invoker or RegistryInvoker(self.tools.registry)))

        async def sweep() -> dict[str, int]:
            return {"cleared": await knowledge.cleanup.sweep()}

        tasks.registry.add(
            housekeeping_action(
                "system.retrieval_cleanup", "Remove the passages and files no row names any more.", sweep
            )
        )
        tasks.registry.add(
            housekeeping_action("system.disk_usage", "Sample the data directory's free space.", self._sample_disk)
        )
        tasks.add_system_task(
            "retrieval-cleanup",
            name="Retrieval cleanup",
            action="system.retrieval_cleanup",
            interval_seconds=self.settings.retrieval_cleanup_seconds,
        )
        # Each replica's own disk: every replica samples it.
        tasks.add_system_task(
            "disk-usage", name="Disk usage", action="system.disk_usage", interval_seconds=30, every_replica=True
        )
        plugins = self.plugins
        tasks.registry.add(
            housekeeping_action(
                "system.plugins_reconcile",
                "Bring this replica's plugins in step with the plugins table.",
                plugins.reconcile,
            )
        )
        tasks.add_system_task(
            "plugins-reconcile",
            name="Plugins reconcile",
            action="system.plugins_reconcile",
            interval_seconds=self.settings.plugins_reconcile_seconds,
            every_replica=True,
        )
        tasks.registry.add(
            housekeeping_action(
                "system.idempotency_keys", "Forget idempotency keys past their day.", self.idempotency.sweep
            )
        )
        tasks.add_system_task(
            "idempotency-keys", name="Idempotency keys", action="system.idempotency_keys", interval_seconds=600
        )
        generations = self.inference.service
        trimmer = Trimmer(streaming=lambda: generations.streaming, finished=lambda: generations.finished)
        tasks.registry.add(
            housekeeping_action(
                "system.memory_trim", "Give memory freed after a burst of streams back to the system.", trimmer.tick
            )
        )
        tasks.add_system_task(
            "memory-trim", name="Memory trim", action="system.memory_trim", interval_seconds=5, every_replica=True
        )
        await tasks.start()
        self.system.scheduler = tasks
        self.contributions = PluginContributions(plugins, self.tools.registry, tasks.registry)
        self.contributions.start()
        return tasks.registrations()

    def _chat_service(self, agent: AgentLoop) -> ChatService:
        assert self.inference is not None and self.retrieval is not None
        self.chats = chats = ChatService(
            self.database,
            self.inference.service,
            self.inference.catalogue,
            ChatEvents(self.database, self.events),
            knowledge=self.retrieval.knowledge,
            agent=agent,
        )
        return chats

    def _chat_registrations(self, chats: ChatService) -> list[ServiceRegistration]:
        chats.tools_count = self._tools_count
        live = LiveEvents(self.events, chats)
        self.journal.stored_reply = chats.stored_reply
        return [
            register(live_pb2, live_pb2_grpc, "LiveService", LiveServicer(live)),
            register(live_pb2, live_pb2_grpc, "EventService", EventServicer(live)),
            register(chat_pb2, chat_pb2_grpc, "ChatService", ChatServicer(chats)),
            register(chat_pb2, chat_pb2_grpc, "MessageService", MessageServicer(chats, self.journal)),
            register(chat_pb2, chat_pb2_grpc, "ConversationService", ConversationServicer(chats, self.journal)),
            register(history_pb2, history_pb2_grpc, "HistoryService", HistoryServicer(self.journal)),
        ]

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
        closing: list[Awaitable[None]] = [
            self.sessions.close(),
            self.events.close(),
            self.journal.close(),
            self.limiter.close(),
            self.idempotency.close(),
        ]
        if self.tasks is not None:
            closing.append(self.tasks.close())
        parts = (self.plugins, self.tools, self.openai, self.inference, self.retrieval, self.identity, self.redis)
        closing += [part.close() for part in parts if part]
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

    async def _sample_disk(self) -> dict[str, int]:
        free = disk_usage(self.settings.data_dir).free_bytes
        DATA_DIR_FREE_BYTES.set(free)
        return {"free_bytes": free}
