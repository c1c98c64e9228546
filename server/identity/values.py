"""Values and input rules shared by the identity services."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from server.errors import FieldViolation
from server.identity.models import User

T = TypeVar("T")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{3,64}$")
_TRIGRAMME = re.compile(r"^[A-Z]{2,4}$")


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    """Facts about the caller, recorded with a session."""

    ip_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserView:
    user: User
    permissions: frozenset[str]

    @property
    def role_names(self) -> list[str]:
        return sorted(role.name for role in self.user.roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.role_names or "*" in self.permissions


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    skip: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.skip + len(self.items) < self.total


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
