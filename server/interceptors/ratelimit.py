"""Rate limits per caller: per client address for anonymous calls, per identity (by role
tier) for the others. Every answer carries X-RateLimit-Limit/Remaining/Reset."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server.auth import AccessPolicy
from server.errors import RateLimited, Unavailable
from server.interceptors.call import CallState
from server.observability import RATE_LIMIT_REJECTIONS
from server.ratelimit.limiter import RateLimit, RateLimiter

log = logging.getLogger("relais.ratelimit")


class RateLimitScope:
    def __init__(
        self, limiter: RateLimiter, policy: AccessPolicy, *, anonymous: RateLimit, user: RateLimit, admin: RateLimit
    ) -> None:
        self._limiter = limiter
        self._policy = policy
        self._anonymous, self._user, self._admin = anonymous, user, admin

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        if self._policy.rule_for(state.method).unmetered:
            yield  # health probes and reflection: monitoring calls them constantly
            return
        principal = state.principal
        if principal is None or principal.anonymous or principal.user_id is None:
            key, rule, tier = f"ip:{state.client_ip or 'unknown'}", self._anonymous, "anonymous"
        elif principal.is_admin:
            key, rule, tier = f"user:{principal.user_id}", self._admin, "admin"
        else:
            key, rule, tier = f"user:{principal.user_id}", self._user, "user"
        try:
            decision = await self._limiter.hit(key, rule)
        except Unavailable:
            # Fail open: an unreachable Redis must not take the whole service down (health shows it).
            log.warning("rate limiter unavailable; request let through")
            yield
            return
        state.response_metadata.extend(decision.headers())
        if not decision.allowed:
            RATE_LIMIT_REJECTIONS.labels(tier).inc()
            raise RateLimited("Rate limit exceeded; retry after the reset time", headers=decision.headers())
        yield
