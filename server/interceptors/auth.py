"""Enforce each method's AccessRule (relais.options.v1.access) before the servicer runs.

Credentials that prove nothing (a garbage bearer token, a guessed API key, a revoked session)
count against the caller's address; once an address has used up `failures` (20 a minute by
default), its credentials are refused with 429 before they are even checked, so guessing
stays slow. On public routes such an address is served as if it had sent no credentials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server.auth import AccessPolicy, AccessRule, Authenticator, Credentials, ForwardingTrust, Principal
from server.errors import CsrfFailed, RateLimited, Unauthenticated, Unavailable
from server.interceptors.call import CallState
from server.ratelimit.limiter import RateLimit, RateLimiter

log = logging.getLogger("relais.auth")


class AuthScope:
    def __init__(
        self,
        policy: AccessPolicy,
        authenticator: Authenticator,
        *,
        trust: ForwardingTrust,
        limiter: RateLimiter | None = None,
        failures: RateLimit | None = None,
    ) -> None:
        self._policy = policy
        self._authenticator = authenticator
        self._trust = trust
        self._limiter = limiter
        self._failures = failures

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        rule = self._policy.rule_for(state.method)
        credentials = Credentials.from_metadata(context.invocation_metadata() or (), context.peer() or "", self._trust)
        if credentials.present and await self._blocked(credentials, rule):
            # Public routes (login…) stay reachable: the credentials are simply not looked at.
            credentials = dataclasses.replace(credentials, bearer=None, api_key=None, cookie_token=None)
        state.credentials = credentials
        state.principal = self._policy.authorize(rule, await self._authenticate(rule, credentials))
        yield

    async def _authenticate(self, rule: AccessRule, credentials: Credentials) -> Principal | None:
        if not credentials.present:
            return None
        try:
            return await self._authenticator.authenticate(credentials)
        except Unauthenticated:
            await self._count_failure(credentials, rule)
            if rule.public:
                return None  # a stale token or cookie must not lock anyone out of login
            raise
        except CsrfFailed:
            if rule.public:
                return None
            raise

    def _key(self, credentials: Credentials) -> str:
        return f"authfail:{credentials.client_ip or 'unknown'}"

    async def _blocked(self, credentials: Credentials, rule: AccessRule) -> bool:
        """Whether the caller's address has no failed attempts left (429 unless the route is public)."""
        if self._limiter is None or self._failures is None:
            return False
        try:
            decision = await self._limiter.peek(self._key(credentials), self._failures)
        except Unavailable:
            return False  # fail open, as the other limits do
        if decision.allowed:
            return False
        if not rule.public:
            raise RateLimited(
                "Too many failed authentication attempts from this address; retry later",
                headers=decision.headers(),
            )
        return True

    async def _count_failure(self, credentials: Credentials, rule: AccessRule) -> None:
        if self._limiter is None or self._failures is None:
            return
        try:
            decision = await self._limiter.hit(self._key(credentials), self._failures)
        except Unavailable:
            return
        if not decision.allowed:
            log.warning("failed authentication limit reached address=%s", credentials.client_ip)
            if not rule.public:
                raise RateLimited(
                    "Too many failed authentication attempts from this address; retry later",
                    headers=decision.headers(),
                )
