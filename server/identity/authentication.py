"""Who is calling: an access token (header or cookie) or an API key, answered from a short cache."""

from __future__ import annotations

import hmac
import json
import math
import time
from datetime import timedelta

from server.auth import Credentials, Principal
from server.errors import CsrfFailed, Unauthenticated
from server.identity import repository
from server.identity.cache import CachedPrincipal, PrincipalCache
from server.identity.core import API_KEY_PREFIX, IdentityCore, sha256
from server.identity.values import UserView, now

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_activity is refreshed at most this often: a write per request would cost more than it tells.
ACTIVITY_GRANULARITY = timedelta(seconds=60)


class Authentication(IdentityCore):
    """Credentials to a principal, and a user to the principal they are now."""

    async def authenticate(self, credentials: Credentials) -> Principal | None:
        """Explicit credentials first (Authorization, X-API-Key), the ambient cookie last. An API
        key may come as a bearer token too, as OpenAI's clients send theirs (a JWT never starts
        with the keys' prefix)."""
        if credentials.bearer and credentials.bearer.startswith(API_KEY_PREFIX):
            return await self._authenticate_api_key(credentials.bearer)
        if credentials.bearer:
            return await self._authenticate_token(credentials, token=credentials.bearer, by_cookie=False)
        if credentials.api_key:
            return await self._authenticate_api_key(credentials.api_key)
        if credentials.cookie_token:
            return await self._authenticate_token(credentials, token=credentials.cookie_token, by_cookie=True)
        return None

    async def _authenticate_token(self, credentials: Credentials, *, token: str, by_cookie: bool) -> Principal:
        key = PrincipalCache.key("token", token)
        cached = self._cache.get(key)
        if cached is None:
            cached = await self._load_token_principal(token)
            self._cache.put(key, cached)
        if by_cookie and (credentials.http_method or "POST").upper() not in SAFE_METHODS:
            given = credentials.csrf_token or ""
            if not given or not cached.csrf_hash or not hmac.compare_digest(sha256(given), cached.csrf_hash):
                raise CsrfFailed("Missing or invalid X-CSRF-Token header")
        return cached.principal

    async def _load_token_principal(self, token: str) -> CachedPrincipal:
        claims = self._signer.verify(token, "access")
        async with self._database.sessions() as session:
            row = await self._live_session(session, claims.session_id)
            if row.user_id != claims.user_id:
                raise Unauthenticated("Invalid token")
            user = await repository.get_user(session, row.user_id)
            if user is None or not user.is_active:
                raise Unauthenticated("Account unavailable")
            if now() - row.last_activity > ACTIVITY_GRANULARITY:
                row.last_activity = now()
                await session.commit()
            view = UserView.of(user)
            principal = Principal(
                subject=str(view.id),
                user_id=view.id,
                session_id=row.id,
                roles=frozenset(view.role_names),
                permissions=view.permissions,
            )
            return CachedPrincipal(
                principal=principal,
                csrf_hash=row.csrf_hash,
                token_expires_at=claims.expires_at.timestamp(),
                cached_at=time.time(),
            )

    async def _authenticate_api_key(self, key: str) -> Principal:
        cache_key = PrincipalCache.key("api-key", key)
        cached = self._cache.get(cache_key)
        if cached is None:
            cached = await self._load_api_key_principal(key)
            self._cache.put(cache_key, cached)
        return cached.principal

    async def _load_api_key_principal(self, key: str) -> CachedPrincipal:
        async with self._database.sessions() as session:
            row = await repository.get_api_key_by_hash(session, sha256(key))
            if row is None or row.revoked_at is not None:
                raise Unauthenticated("Invalid API key")
            expires = row.expires_at
            if expires is not None and expires <= now():
                raise Unauthenticated("API key expired")
            user = await repository.get_user(session, row.user_id)
            if user is None or not user.is_active:
                raise Unauthenticated("Account unavailable")
            view = UserView.of(user)
            scopes = frozenset(json.loads(row.scopes or "[]"))
            permissions = view.permissions
            if scopes:
                permissions = scopes if "*" in permissions else permissions & scopes
            if row.last_used_at is None or now() - row.last_used_at > ACTIVITY_GRANULARITY:
                row.last_used_at = now()
                await session.commit()
        principal = Principal(
            subject=str(view.id),
            user_id=view.id,
            api_key_id=row.id,
            roles=frozenset(view.role_names),
            permissions=permissions,
        )
        return CachedPrincipal(
            principal=principal,
            csrf_hash=None,
            token_expires_at=expires.timestamp() if expires is not None else math.inf,
            cached_at=time.time(),
        )

    async def principal_of(self, user_id: int) -> Principal | None:
        """The user as a principal with the roles and permissions they hold now; None when the
        account is gone or deactivated. Scheduled tasks run as their owner, checked each run."""
        async with self._database.sessions() as session:
            user = await repository.get_user(session, user_id)
            if user is None or not user.is_active:
                return None
            view = UserView.of(user)
        return Principal(
            subject=str(view.id), user_id=view.id, roles=frozenset(view.role_names), permissions=view.permissions
        )
