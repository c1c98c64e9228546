"""Accounts, sign-in, tokens and sessions: the identity domain's logic.

Every method takes keyword-only options, opens its own unit of work and commits it
as a whole, so a failed call leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import asc, desc, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Credentials, Principal
from server.errors import (
    AlreadyExists,
    CsrfFailed,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    RateLimited,
    StateConflict,
    Unauthenticated,
    ValidationFailed,
)
from server.events.bus import EventBus
from server.events.local import LocalBus
from server.events.topics import SESSION_ENDED, USER_LOGIN, SessionEnded, UserLogin
from server.identity import passwords, repository
from server.identity.cache import CachedPrincipal, PrincipalCache
from server.identity.models import AuthSession, Role, User
from server.identity.roles import ensure_may_grant
from server.identity.tokens import TokenSigner
from server.identity.values import (
    ClientInfo,
    Page,
    UserView,
    aware,
    normalise_email,
    normalise_name,
    normalise_trigramme,
    normalise_username,
    now,
)
from server.observability import RATE_LIMIT_REJECTIONS
from server.paging import page_window
from server.ratelimit.limiter import RateLimit, RateLimiter
from server.storage import Database

# What every API key's secret starts with (api_keys.py makes them).
API_KEY_PREFIX = "rls_"
log = logging.getLogger("relais.identity")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_activity is refreshed at most this often: a write per request would cost more than it tells.
ACTIVITY_GRANULARITY = timedelta(seconds=60)
USER_SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "full_name": User.full_name,
    "last_login": User.last_login,
    "id": User.id,
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    csrf_token: str
    session_id: str
    expires_in: int
    user: UserView


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAccount:
    email: str
    password: str
    full_name: str = ""
    trigramme: str = ""
    username: str = ""


class UserDeletionHook(Protocol):
    """Another domain's part in deleting a user: rows that cascade can leave things outside the
    database behind (stored files, vector passages), which this hook lists and then removes."""

    async def before_user_deleted(self, session: AsyncSession, user_id: int) -> None:
        """Runs in the deleting transaction, before the user's row goes."""

    async def after_user_deleted(self, user_id: int) -> None:
        """Runs once that transaction has committed."""


class IdentityService:
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

    # ----------------------------------------------------------------- accounts

    async def register(
        self, account: NewAccount, *, roles: tuple[str, ...] = ("user",), self_service: bool = True
    ) -> UserView:
        if self_service and not self._allow_registration:
            raise PermissionDenied("Registration is closed on this server")
        violations: list[FieldViolation] = []
        email = normalise_email(account.email, violations)
        username = normalise_username(account.username or email, violations, own_email=email)
        trigramme = normalise_trigramme(account.trigramme, violations)
        full_name = normalise_name(account.full_name, violations)
        violations += passwords.password_violations(account.password, email=email)
        if violations:
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            await self._refuse_conflicts(session, email=email, username=username, trigramme=trigramme, exclude_id=None)
            user = User(
                email=email,
                username=username,
                full_name=full_name,
                trigramme=trigramme,
                password_hash=await passwords.hash_password(account.password),
                is_active=True,
            )
            for name in roles:
                role = await repository.get_role_by_name(session, name)
                if role is None:
                    raise FailedPrecondition(f"Role {name!r} does not exist")
                user.roles.append(role)
            session.add(user)
            with repository.unique_violations("An account with this email, username or trigramme exists"):
                await session.flush()
            view = await self._view(session, user)
        log.info("account created user_id=%d", view.user.id)
        return view

    async def _refuse_conflicts(
        self,
        session: AsyncSession,
        *,
        email: str | None,
        username: str | None,
        trigramme: str | None,
        exclude_id: int | None,
    ) -> None:
        taken = await repository.find_conflicts(
            session, email=email, username=username, trigramme=trigramme, exclude_id=exclude_id
        )
        if taken:
            raise AlreadyExists(f"{', '.join(taken).capitalize()} already in use", metadata={"fields": ",".join(taken)})

    async def _view(self, session: AsyncSession, user: User) -> UserView:
        # Roles and their permissions are loaded with the user (selectin): no further query.
        return UserView(user=user, permissions=user_permissions(user))

    async def me(self, principal: Principal) -> UserView:
        async with self._database.sessions() as session:
            user = await repository.get_user(session, _user_id(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            return await self._view(session, user)

    async def update_profile(
        self,
        principal: Principal,
        *,
        email: str | None,
        full_name: str | None,
        trigramme: str | None,
        username: str | None,
    ) -> UserView:
        violations: list[FieldViolation] = []
        email = normalise_email(email, violations) if email is not None else None
        username = normalise_username(username, violations) if username is not None else None
        trigramme_value = normalise_trigramme(trigramme, violations) if trigramme is not None else None
        full_name = normalise_name(full_name, violations) if full_name is not None else None
        if violations:
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, _user_id(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            if username is not None:
                normalise_username(username, violations, own_email=email or user.email)
                if violations:
                    raise ValidationFailed(violations)
            await self._refuse_conflicts(
                session, email=email, username=username, trigramme=trigramme_value, exclude_id=user.id
            )
            if email is not None:
                user.email = email
            if username is not None:
                user.username = username
            if trigramme is not None:
                user.trigramme = trigramme_value
            if full_name is not None:
                user.full_name = full_name
            with repository.unique_violations("Email, username or trigramme already in use"):
                await session.flush()
            return await self._view(session, user)

    async def change_password(self, principal: Principal, *, current: str, new: str) -> int:
        """Returns the number of other sessions signed out."""
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, _user_id(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            if not await passwords.verify_password(user.password_hash, current):
                raise ValidationFailed([FieldViolation(field="current_password", message="is incorrect")])
            violations = passwords.password_violations(new, field="new_password", email=user.email)
            if new == current:
                violations.append(FieldViolation(field="new_password", message="must differ from the current one"))
            if violations:
                raise ValidationFailed(violations)
            user.password_hash = await passwords.hash_password(new)
            revoked = await repository.revoke_sessions(session, user.id, now(), keep=principal.session_id)
        log.info("password changed user_id=%d sessions_revoked=%d", user.id, revoked)
        await self._sessions_ended(user.id, except_session_id=principal.session_id, reason="password_changed")
        return revoked

    # ------------------------------------------------------------------ sign-in

    async def login(self, *, login: str, password: str, client: ClientInfo) -> IssuedTokens:
        login = login.strip().lower()
        violations = []
        if not login:
            violations.append(FieldViolation(field="username", message="user, username or email is required"))
        if not password:
            violations.append(FieldViolation(field="password", message="is required"))
        if violations:
            raise ValidationFailed(violations)
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
        rehashed = await passwords.hash_password(password) if passwords.needs_rehash(user.password_hash) else None
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user.id)
            if user is None or not user.is_active:
                raise Unauthenticated("Invalid credentials")
            if rehashed:
                user.password_hash = rehashed
            user.last_login = now()
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
        lifetime = min(self._refresh_ttl, aware(row.expires_at) - now())  # type: ignore[operator]
        refresh, claims = self._signer.issue(user_id=user.id, session_id=row.id, kind="refresh", lifetime=lifetime)
        row.refresh_jti = claims.token_id
        await session.flush()
        return IssuedTokens(
            access_token=access,
            refresh_token=refresh,
            csrf_token=csrf,
            session_id=row.id,
            expires_in=int(self._access_ttl.total_seconds()),
            user=await self._view(session, user),
        )

    async def refresh(self, *, refresh_token: str, principal: Principal | None) -> IssuedTokens:
        """Rotate a session's tokens, from its refresh token or its live access token."""
        async with self._database.sessions() as session, session.begin():
            if refresh_token:
                claims = self._signer.verify(refresh_token, "refresh")
                row = await self._live_session(session, claims.session_id)
                if not hmac.compare_digest(row.refresh_jti, claims.token_id):
                    # A rotated token came back: someone holds a stolen copy. End the session.
                    row.revoked_at = now()
                    log.warning("refresh token reuse; session revoked session_id=%s", row.id)
                    await session.commit()
                    await self._sessions_ended(row.user_id, session_id=row.id, reason="refresh_token_reused")
                    raise Unauthenticated("Refresh token already used; the session has been ended")
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

    async def _live_session(self, session: AsyncSession, session_id: str) -> AuthSession:
        row = await repository.get_session(session, session_id)
        if row is None or row.revoked_at is not None or aware(row.expires_at) <= now():  # type: ignore[operator]
            raise Unauthenticated("Session ended")
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
        await self._sessions_ended(_user_id(principal), session_id=principal.session_id, reason="logout")
        return True

    # ---------------------------------------------------------- authentication

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
            if now() - aware(row.last_activity) > ACTIVITY_GRANULARITY:  # type: ignore[operator]
                row.last_activity = now()
                await session.commit()
            view = await self._view(session, user)
            principal = Principal(
                subject=str(user.id),
                user_id=user.id,
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
            expires = aware(row.expires_at)
            if expires is not None and expires <= now():
                raise Unauthenticated("API key expired")
            user = await repository.get_user(session, row.user_id)
            if user is None or not user.is_active:
                raise Unauthenticated("Account unavailable")
            view = await self._view(session, user)
            scopes = frozenset(json.loads(row.scopes or "[]"))
            permissions = view.permissions
            if scopes:
                permissions = scopes if "*" in permissions else permissions & scopes
            if row.last_used_at is None or now() - aware(row.last_used_at) > ACTIVITY_GRANULARITY:  # type: ignore[operator]
                row.last_used_at = now()
                await session.commit()
        principal = Principal(
            subject=str(user.id),
            user_id=user.id,
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
            view = await self._view(session, user)
        return Principal(
            subject=str(user.id), user_id=user.id, roles=frozenset(view.role_names), permissions=view.permissions
        )

    # ----------------------------------------------------------------- sessions

    async def list_sessions(
        self, principal: Principal, *, include_inactive: bool, all_users: bool
    ) -> list[AuthSession]:
        if all_users and not principal.can("sessions:read"):
            raise PermissionDenied("Permission 'sessions:read' required")
        statement = select(AuthSession).order_by(desc(AuthSession.created_at)).limit(500)
        if not all_users:
            statement = statement.where(AuthSession.user_id == _user_id(principal))
        if not include_inactive:
            statement = statement.where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now())
        async with self._database.sessions() as session:
            return list(await session.scalars(statement))

    async def terminate_session(self, principal: Principal, session_id: str) -> AuthSession:
        async with self._database.sessions() as session, session.begin():
            row = await repository.get_session(session, session_id)
            # Another user's session is invisible (404), unless the caller may manage sessions.
            if row is None or (row.user_id != principal.user_id and not principal.can("sessions:write")):
                raise NotFound("No such session")
            if row.revoked_at is None:
                row.revoked_at = now()
        log.info("session terminated session_id=%s by=%s", session_id, principal.subject)
        await self._sessions_ended(row.user_id, session_id=session_id, reason="terminated")
        return row

    async def current_session(self, principal: Principal, *, requested: str | None) -> AuthSession:
        session_id = requested or principal.session_id
        if not session_id:
            raise NotFound("This call has no session (API key); send X-Session-ID")
        async with self._database.sessions() as session:
            row = await repository.get_session(session, session_id)
        if row is None or (row.user_id != principal.user_id and not principal.can("sessions:read")):
            raise NotFound("No such session")
        return row

    # ------------------------------------------------------------ administration

    async def list_users(
        self, *, skip: int, offset: int, limit: int, search: str, is_active: bool | None, sort_by: str, descending: bool
    ) -> Page[UserView]:
        skip, limit = page_window(skip=skip, offset=offset, limit=limit)
        column = USER_SORT_COLUMNS.get(sort_by or "created_at")
        if column is None:
            raise ValidationFailed(
                [FieldViolation(field="sort_by", message=f"must be one of {', '.join(USER_SORT_COLUMNS)}")]
            )
        statement = repository.users_query(search=search.strip(), is_active=is_active)
        order = desc(column) if descending else asc(column)
        async with self._database.sessions() as session:
            total = await repository.count(session, statement)
            rows = list(await session.scalars(statement.order_by(order, asc(User.id)).offset(skip).limit(limit)))
            items = [await self._view(session, user) for user in rows]
        return Page(items=items, total=total, skip=skip, limit=limit)

    async def get_user(self, user_id: int) -> UserView:
        async with self._database.sessions() as session:
            user = await repository.get_user(session, user_id)
            if user is None:
                raise NotFound(f"No user {user_id}")
            return await self._view(session, user)

    async def delete_user(self, principal: Principal, user_id: int) -> None:
        if user_id == principal.user_id:
            raise StateConflict("You cannot delete your own account here")
        async with self._database.sessions() as session, session.begin():
            if await repository.get_user(session, user_id) is None:
                raise NotFound(f"No user {user_id}")
            for hook in self.user_deletion_hooks:
                await hook.before_user_deleted(session, user_id)
            await repository.delete_user(session, user_id)
        await self._sessions_ended(user_id, reason="deactivated")
        for hook in self.user_deletion_hooks:
            try:
                await hook.after_user_deleted(user_id)
            except Exception:  # The account is gone; what is left is retried by the hook's own owner.
                log.exception("after deleting user %d, a cleanup step failed", user_id)
        log.info("account deleted user_id=%d by=%s", user_id, principal.subject)

    async def set_role(self, principal: Principal, user_id: int, role_name: str) -> UserView:
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user_id)
            if user is None:
                raise NotFound(f"No user {user_id}")
            role = await repository.get_role_by_name(session, role_name.strip())
            if role is None:
                raise NotFound(f"No role named {role_name!r}")
            ensure_may_grant(principal, permissions=_names(role), role_name=role.name)
            user.roles = [role]
            await session.flush()
            return await self._view(session, user)

    async def change_roles(self, principal: Principal, user_id: int, role_id: int, *, add: bool) -> None:
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user_id)
            if user is None:
                raise NotFound(f"No user {user_id}")
            role = await repository.get_role(session, role_id)
            if role is None:
                raise NotFound(f"No role {role_id}")
            ensure_may_grant(principal, permissions=_names(role), role_name=role.name)
            if add and role not in user.roles:
                user.roles.append(role)
            elif not add:
                if role not in user.roles:
                    raise NotFound(f"User {user_id} does not hold role {role_id}")
                user.roles.remove(role)

    async def set_active(self, principal: Principal, user_id: int, *, active: bool) -> User:
        if not active and user_id == principal.user_id:
            raise StateConflict("You cannot deactivate your own account")
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user_id)
            if user is None:
                raise NotFound(f"No user {user_id}")
            user.is_active = active
            if not active:
                await repository.revoke_sessions(session, user_id, now())
        if not active:
            await self._sessions_ended(user_id, reason="deactivated")
        return user

    async def _sessions_ended(
        self, user_id: int, *, session_id: str | None = None, except_session_id: str | None = None, reason: str
    ) -> None:
        """Tell every replica, so that the live connections of those sessions close now."""
        ended = SessionEnded(user_id=user_id, session_id=session_id, except_session_id=except_session_id, reason=reason)
        await self.events.publish(SESSION_ENDED, ended)


def user_permissions(user: User) -> frozenset[str]:
    return frozenset(permission.name for role in user.roles for permission in role.permissions)


def _names(role: Role) -> list[str]:
    return [permission.name for permission in role.permissions]


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise Unauthenticated("Sign in to use this operation")
    return principal.user_id
