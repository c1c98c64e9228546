"""API keys: created by their owner, shown once, stored as a hash, revocable."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from server.auth import Principal
from server.errors import FieldViolation, NotFound, PermissionDenied, ValidationFailed
from server.identity import repository
from server.identity.core import API_KEY_PREFIX, sha256
from server.identity.models import ApiKey
from server.identity.values import ApiKeyView, now
from server.storage import Database

KEY_PREFIX = API_KEY_PREFIX
MAX_KEYS_PER_USER = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatedKey:
    key: ApiKeyView
    # Shown once, at creation: only its hash is kept.
    secret: str


class ApiKeys:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def create(self, principal: Principal, *, name: str, scopes: list[str], expires_in_days: int) -> CreatedKey:
        owner = _owner(principal)
        violations = []
        name = name.strip()
        if not 1 <= len(name) <= 128:
            violations.append(FieldViolation(field="name", message="must be 1 to 128 characters"))
        if not 0 <= expires_in_days <= 3650:
            violations.append(FieldViolation(field="expires_in_days", message="must be between 0 and 3650"))
        wanted = _requested_scopes(principal, scopes)
        beyond = [scope for scope in wanted if not principal.can(scope)]
        if beyond:
            # A key can only narrow its owner's rights, never widen them.
            raise PermissionDenied(f"You do not hold the permissions {', '.join(beyond)}")
        if violations:
            raise ValidationFailed(violations)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            user_id=owner,
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 6],
            key_hash=sha256(secret),
            scopes=json.dumps(wanted),
            created_at=now(),
            expires_at=now() + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        async with self._database.sessions() as session, session.begin():
            if await repository.active_api_key_count(session, owner) >= MAX_KEYS_PER_USER:
                raise ValidationFailed(
                    [FieldViolation(field="name", message=f"at most {MAX_KEYS_PER_USER} active keys")]
                )
            session.add(row)
        return CreatedKey(key=ApiKeyView.of(row), secret=secret)

    async def list(self, principal: Principal, *, include_revoked: bool) -> list[ApiKeyView]:
        statement = repository.api_keys(_owner(principal), include_revoked=include_revoked)
        async with self._database.sessions() as session:
            return [ApiKeyView.of(row) for row in await session.scalars(statement)]

    async def revoke(self, principal: Principal, key_id: int) -> None:
        async with self._database.sessions() as session, session.begin():
            row = await session.get(ApiKey, key_id)
            if row is None or row.user_id != principal.user_id:
                raise NotFound(f"No API key {key_id}")
            if row.revoked_at is None:
                row.revoked_at = now()


def _requested_scopes(principal: Principal, scopes: list[str]) -> list[str]:
    """The scopes a new key gets: those asked for, and never more than a creating key holds itself.

    An empty list means "all of the owner's permissions" for a key created by a signed-in user; a key
    creating a key passes on its own (possibly narrowed) permissions instead, so it cannot mint a wider one.
    """
    wanted = sorted({scope.strip().lower() for scope in scopes if scope.strip()})
    if not wanted and principal.api_key_id is not None:
        return sorted(principal.permissions)
    return wanted


def _owner(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Sign in as a user to manage API keys")
    return principal.user_id


__all__ = ["ApiKeys", "CreatedKey"]
