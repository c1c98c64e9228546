"""Values and input rules shared by the identity services."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from server.errors import FieldViolation
from server.identity.models import ApiKey, AuthSession, Permission, Role, User
from server.views import copied

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,64}$")
_TRIGRAMME = re.compile(r"^[A-Z]{2,4}$")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    """Facts about the caller, recorded with a session."""

    ip_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserView:
    """An account as the servicers see it: its fields, its roles and the permissions they grant."""

    id: int
    email: str
    username: str
    full_name: str
    trigramme: str | None
    is_active: bool
    created_at: datetime
    last_login: datetime | None
    role_names: tuple[str, ...]
    permissions: frozenset[str]

    @classmethod
    def of(cls, user: User) -> UserView:
        # Roles and their permissions come with the user (joined by the repository): no further query.
        return copied(
            cls,
            user,
            role_names=tuple(sorted(role.name for role in user.roles)),
            permissions=frozenset(permission.name for role in user.roles for permission in role.permissions),
        )

    @property
    def is_admin(self) -> bool:
        return "admin" in self.role_names or "*" in self.permissions


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionView:
    """A sign-in session as the servicers see it; `active` as of when it was read."""

    id: str
    user_id: int
    client: str
    ip_address: str
    created_at: datetime
    last_activity: datetime
    expires_at: datetime
    active: bool

    @classmethod
    def of(cls, row: AuthSession) -> SessionView:
        return copied(cls, row, active=row.revoked_at is None and row.expires_at > now())


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyView:
    """An API key as its owner sees it: never its secret; `active` as of when it was read."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    active: bool

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyView:
        return copied(
            cls,
            row,
            scopes=tuple(json.loads(row.scopes or "[]")),
            active=row.revoked_at is None and (row.expires_at is None or row.expires_at > now()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionView:
    """A permission as the servicers see it."""

    id: int
    name: str
    description: str
    resource: str
    action: str

    @classmethod
    def of(cls, row: Permission) -> PermissionView:
        return copied(cls, row)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleView:
    """A role as the servicers see it: its permissions by name, and how many users hold it."""

    id: int
    name: str
    description: str
    builtin: bool
    created_at: datetime
    permissions: tuple[PermissionView, ...]
    users_count: int

    @classmethod
    def of(cls, role: Role, *, users_count: int) -> RoleView:
        # Its permissions come with the role (a selectin relationship): no further query here.
        permissions = tuple(PermissionView.of(p) for p in sorted(role.permissions, key=lambda p: p.name))
        return copied(cls, role, permissions=permissions, users_count=users_count)


def normalise_email(email: str, violations: list[FieldViolation], field: str = "email") -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        violations.append(FieldViolation(field=field, message="must be a valid email address"))
    return email


def normalise_username(username: str, violations: list[FieldViolation], *, own_email: str | None = None) -> str:
    """A valid username; one that looks like an email must be the account's own (`own_email`, when known)."""
    username = username.strip()
    if not _USERNAME.match(username):
        violations.append(FieldViolation(field="username", message="must be 3 to 64 letters, digits or . _ @ + -"))
    elif own_email is not None and "@" in username and username.lower() != own_email.lower():
        violations.append(FieldViolation(field="username", message="may only look like an email if it is your own"))
    return username


def normalise_trigramme(trigramme: str, violations: list[FieldViolation]) -> str | None:
    trigramme = trigramme.strip().upper()
    if not trigramme:
        return None
    if not _TRIGRAMME.match(trigramme):
        violations.append(FieldViolation(field="trigramme", message="must be 2 to 4 letters"))
    return trigramme


def normalise_name(name: str, violations: list[FieldViolation], field: str = "full_name") -> str:
    name = " ".join(name.split())
    if len(name) > 200:
        violations.append(FieldViolation(field=field, message="must be at most 200 characters"))
    return name
