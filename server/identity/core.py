"""The identity service's core: its settings, the stores it shares, and what every concern needs.

Accounts (accounts.py), sign-in (sign_in.py), sessions (sessions.py) and authentication
(authentication.py) stand on it; service.py joins them as IdentityService. Every public method
takes keyword-only options, opens its own unit of work and commits it as a whole, so a failed
call leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Principal
from server.errors import Unauthenticated
from server.events.bus import EventBus
from server.events.local import LocalBus
from server.events.topics import SESSION_ENDED, SessionEnded
from server.identity import repository
from server.identity.cache import PrincipalCache
from server.identity.models import AuthSession
from server.identity.tokens import TokenSigner
from server.identity.values import now
from server.ratelimit.limiter import RateLimit, RateLimiter
from server.storage import Database

# What every API key's secret starts with (api_keys.py makes them).
API_KEY_PREFIX = "rls_"
log = logging.getLogger("relais.identity")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def user_id_of(principal: Principal) -> int:
    if principal.user_id is None:
        raise Unauthenticated("Sign in to use this operation")
    return principal.user_id


class UserDeletionHook(Protocol):
    """Another domain's part in deleting a user: rows that cascade can leave things outside the
    database behind (stored files, vector passages), which this hook lists and then removes."""

    async def before_user_deleted(self, session: AsyncSession, user_id: int) -> None:
        """Runs in the deleting transaction, before the user's row goes."""

    async def after_user_deleted(self, user_id: int) -> None:
        """Runs once that transaction has committed."""


class IdentityCore:
    """The database, the token signer, the sign-in limits and the principal cache; where ended
    sessions are announced and which domains take part in deleting a user."""

    def __init__(
        self,
        *,
        database: Database,
        signer: TokenSigner,
        limiter: RateLimiter,
        access_ttl: int,
        refresh_ttl: int,
        login_limit: RateLimit,
        allow_registration: bool,
        principal_cache_ttl: float = 5.0,
    ) -> None:
        self._database = database
        self._cache = PrincipalCache(ttl=principal_cache_ttl)
        self._signer = signer
        self._limiter = limiter
        self._access_ttl = timedelta(seconds=access_ttl)
        self._refresh_ttl = timedelta(seconds=refresh_ttl)
        self._login_limit = login_limit
        self._allow_registration = allow_registration
        # Registered by the domains that keep per-user data outside the database.
        self.user_deletion_hooks: list[UserDeletionHook] = []
        # Where ended sessions and sign-ins are announced (the server plugs its bus in).
        self.events: EventBus = LocalBus()

    async def _live_session(self, session: AsyncSession, session_id: str) -> AuthSession:
        row = await repository.get_session(session, session_id)
        if row is None or row.revoked_at is not None or row.expires_at <= now():
            raise Unauthenticated("Session ended")
        return row

    async def _sessions_ended(
        self, user_id: int, *, session_id: str | None = None, except_session_id: str | None = None, reason: str
    ) -> None:
        """Tell every replica, so that the live connections of those sessions close now."""
        ended = SessionEnded(user_id=user_id, session_id=session_id, except_session_id=except_session_id, reason=reason)
        await self.events.publish(SESSION_ENDED, ended)
