"""Identity and access: accounts, sign-in, tokens, sessions, roles, permissions, API keys."""

from __future__ import annotations

from dataclasses import dataclass

from relais.v1 import (
    admin_user_pb2,
    admin_user_pb2_grpc,
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    role_pb2,
    role_pb2_grpc,
    session_pb2,
    session_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)

from server.config import Settings
from server.identity import bootstrap
from server.identity.api_keys import ApiKeys
from server.identity.cache import IdentityChangeBus
from server.identity.roles import RoleAdministration
from server.identity.service import IdentityService
from server.identity.servicer import (
    AdminUserServicer,
    ApiKeyServicer,
    AuthServicer,
    RoleServicer,
    SessionServicer,
    UserServicer,
)
from server.identity.tokens import TokenSigner, load_signing_key
from server.ratelimit.limiter import RateLimit, RateLimiter
from server.registration import ServiceRegistration, register
from server.storage import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityDomain:
    service: IdentityService
    roles: RoleAdministration
    api_keys: ApiKeys
    # Empties the other processes' principal caches on identity changes (with Redis only).
    change_bus: IdentityChangeBus | None = None

    async def close(self) -> None:
        if self.change_bus is not None:
            await self.change_bus.close()

    def registrations(self) -> list[ServiceRegistration]:
        return [
            register(auth_pb2, auth_pb2_grpc, "AuthService", AuthServicer(self.service)),
            register(user_pb2, user_pb2_grpc, "UserService", UserServicer(self.service)),
            register(admin_user_pb2, admin_user_pb2_grpc, "AdminUserService", AdminUserServicer(self.service)),
            register(role_pb2, role_pb2_grpc, "RoleService", RoleServicer(self.roles)),
            register(session_pb2, session_pb2_grpc, "SessionService", SessionServicer(self.service)),
            register(api_key_pb2, api_key_pb2_grpc, "ApiKeyService", ApiKeyServicer(self.api_keys)),
        ]


async def start_identity(settings: Settings, database: Database, limiter: RateLimiter) -> IdentityDomain:
    """Seed built-in roles, load (or create) the signing key, create the first admin if configured."""
    await bootstrap.seed(database)
    configured_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    signer = TokenSigner(await load_signing_key(database, configured_key))
    service = IdentityService(
        database=database,
        signer=signer,
        limiter=limiter,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        login_limit=RateLimit.parse(settings.rate_limit_login),
        allow_registration=settings.allow_registration,
        principal_cache_ttl=settings.principal_cache_ttl,
    )
    if settings.admin_email and settings.admin_password:
        await bootstrap.ensure_admin(
            service, database, email=settings.admin_email, password=settings.admin_password.get_secret_value()
        )
    change_bus = None
    if settings.redis_url and settings.principal_cache_ttl > 0:
        change_bus = IdentityChangeBus(settings.redis_url)
        await change_bus.start()
    return IdentityDomain(
        service=service,
        roles=RoleAdministration(database=database),
        api_keys=ApiKeys(database=database),
        change_bus=change_bus,
    )
