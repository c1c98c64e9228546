"""Signing in and out: a session opened with a password, its tokens issued and rotated, and ended."""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Principal
from server.errors import FieldViolation, PermissionDenied, RateLimited, Unauthenticated, ValidationFailed
from server.events.topics import USER_LOGIN, UserLogin
from server.identity import passwords, repository
from server.identity.core import IdentityCore, log, sha256, user_id_of
from server.identity.models import AuthSession, User
from server.identity.values import ClientInfo, UserView, now
from server.observability import RATE_LIMIT_REJECTIONS


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    csrf_token: str
    session_id: str
    expires_in: int
    user: UserView


class SignIn(IdentityCore):
    """Login, refresh and logout."""

    async def login(self, *, login: str, password: str, client: ClientInfo) -> IssuedTokens:
        login = login.strip().lower()
        _require_credentials(login, password)
        user = await self._verified_user(login, password, client)
        rehashed = await passwords.hash_password(password) if passwords.needs_rehash(user.password_hash) else None
        async with self._database.sessions() as session, session.begin():
            # Verified outside this transaction (Argon2's 100 ms): still active is checked as it writes.
            signed_in_at = now()
            if not await repository.record_sign_in(session, user.id, at=signed_in_at, password_hash=rehashed):
                raise Unauthenticated("Invalid credentials")
            user.last_login = signed_in_at
            issued = await self._open_session(session, user, client)
        log.info("signed in user_id=%d session_id=%s", user.id, issued.session_id)
        signed_in = UserLogin(
            user_id=user.id,
            email=user.email,
            username=user.username or "",
            session_id=issued.session_id,
            ip_address=client.ip_address,
        )
        await self.events.publish(USER_LOGIN, signed_in)
        return issued

    async def _verified_user(self, login: str, password: str, client: ClientInfo) -> User:
        """The active account `login` names, once `password` is checked against it under the limit."""
        # Failed attempts count against the account and address; successful ones do not.
        attempts = f"login:{sha256(login)}:{client.ip_address}"
        # Counted before the password check, atomically, so concurrent guesses cannot all slip under the
        # limit; a successful sign-in gives its use back.
        decision = await self._limiter.hit(attempts, self._login_limit)
        if not decision.allowed:
            RATE_LIMIT_REJECTIONS.labels("login").inc()
            raise RateLimited("Too many failed sign-in attempts; try again later", headers=decision.headers())
        # Read and verify outside the write transaction: Argon2 takes ~100 ms, and SQLite
        # would hold its write lock all that time.
        async with self._database.sessions() as session:
            user = await repository.get_user_by_login(session, login)
        valid = await passwords.verify_password(user.password_hash if user else None, password)
        if user is None or not valid:
            raise Unauthenticated("Invalid credentials")
        await self._limiter.release(attempts, self._login_limit)
        if not user.is_active:
            raise PermissionDenied("This account is deactivated")
        return user

    async def _open_session(self, session: AsyncSession, user: User, client: ClientInfo) -> IssuedTokens:
        csrf = secrets.token_urlsafe(32)
        row = AuthSession(
            id=str(uuid.uuid4()),
            user_id=user.id,
            client=client.user_agent[:512],
            ip_address=client.ip_address[:64],
            created_at=now(),
            last_activity=now(),
            expires_at=now() + self._refresh_ttl,
            refresh_jti="",
            csrf_hash=sha256(csrf),
        )
        session.add(row)
        return await self._issue(session, row, user, csrf)

    async def _issue(self, session: AsyncSession, row: AuthSession, user: User, csrf: str) -> IssuedTokens:
        access, _ = self._signer.issue(user_id=user.id, session_id=row.id, kind="access", lifetime=self._access_ttl)
        lifetime = min(self._refresh_ttl, row.expires_at - now())
        refresh, claims = self._signer.issue(user_id=user.id, session_id=row.id, kind="refresh", lifetime=lifetime)
        row.refresh_jti = claims.token_id
        await session.flush()
        return IssuedTokens(
            access_token=access,
            refresh_token=refresh,
            csrf_token=csrf,
            session_id=row.id,
            expires_in=int(self._access_ttl.total_seconds()),
            user=UserView.of(user),
        )

    async def refresh(self, *, refresh_token: str, principal: Principal | None) -> IssuedTokens:
        """Rotate a session's tokens, from its refresh token or its live access token."""
        async with self._database.sessions() as session, session.begin():
            if refresh_token:
                row = await self._session_of_refresh_token(session, refresh_token)
            elif principal is not None and principal.session_id is not None:
                row = await self._live_session(session, principal.session_id)
            else:
                raise Unauthenticated("A refresh token or a valid access token is required")
            user = await repository.get_user(session, row.user_id)
            if user is None or not user.is_active:
                raise Unauthenticated("Account unavailable")
            # The CSRF token stays the session's: a new one is issued and its hash replaced.
            csrf = secrets.token_urlsafe(32)
            row.csrf_hash = sha256(csrf)
            row.last_activity = now()
            return await self._issue(session, row, user, csrf)

    async def _session_of_refresh_token(self, session: AsyncSession, refresh_token: str) -> AuthSession:
        claims = self._signer.verify(refresh_token, "refresh")
        row = await self._live_session(session, claims.session_id)
        if not hmac.compare_digest(row.refresh_jti, claims.token_id):
            # A rotated token came back: someone holds a stolen copy. End the session.
            row.revoked_at = now()
            log.warning("refresh token reuse; session revoked session_id=%s", row.id)
            await session.commit()
            await self._sessions_ended(row.user_id, session_id=row.id, reason="refresh_token_reused")
            raise Unauthenticated("Refresh token already used; the session has been ended")
        return row

    async def logout(self, principal: Principal) -> bool:
        """End the caller's session. False when the caller has none (an API key)."""
        if principal.session_id is None:
            return False
        async with self._database.sessions() as session, session.begin():
            row = await repository.get_session(session, principal.session_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = now()
        log.info("signed out session_id=%s", principal.session_id)
        await self._sessions_ended(user_id_of(principal), session_id=principal.session_id, reason="logout")
        return True


def _require_credentials(login: str, password: str) -> None:
    violations = []
    if not login:
        violations.append(FieldViolation(field="username", message="user, username or email is required"))
    if not password:
        violations.append(FieldViolation(field="password", message="is required"))
    if violations:
        raise ValidationFailed(violations)
