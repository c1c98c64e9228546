"""Who called: the authenticated caller Relais passes in metadata (never their credentials).

x-relais-subject      "user:42", "anonymous", "apikey:7"…
x-relais-user-id      "42" (absent for callers without an account)
x-relais-roles        "admin,user"
x-relais-permissions  "users:read,*"
x-relais-anonymous    "true" when the caller is the anonymous principal
x-request-id          the request id of the call (for logs)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SUBJECT = "x-relais-subject"
USER_ID = "x-relais-user-id"
ROLES = "x-relais-roles"
PERMISSIONS = "x-relais-permissions"
ANONYMOUS = "x-relais-anonymous"
REQUEST_ID = "x-request-id"


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    subject: str = ""
    user_id: int | None = None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    anonymous: bool = False
    request_id: str = ""
    # Names of every metadata entry the call carried (for diagnostics).
    received: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or "*" in self.permissions

    def can(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions

    def metadata(self) -> list[tuple[str, str]]:
        """The caller as gRPC metadata (or HTTP headers)."""
        pairs = [(SUBJECT, self.subject), (ROLES, ",".join(sorted(self.roles)))]
        pairs.append((PERMISSIONS, ",".join(sorted(self.permissions))))
        if self.user_id is not None:
            pairs.append((USER_ID, str(self.user_id)))
        if self.anonymous:
            pairs.append((ANONYMOUS, "true"))
        if self.request_id:
            pairs.append((REQUEST_ID, self.request_id))
        return pairs

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, str | bytes]] | Mapping[str, str]) -> Caller:
        pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
        pairs = list(pairs)
        values = {key.lower(): value for key, value in pairs if isinstance(value, str)}
        user_id = values.get(USER_ID, "")
        return cls(
            subject=values.get(SUBJECT, ""),
            user_id=int(user_id) if user_id.isdigit() else None,
            roles=frozenset(filter(None, values.get(ROLES, "").split(","))),
            permissions=frozenset(filter(None, values.get(PERMISSIONS, "").split(","))),
            anonymous=values.get(ANONYMOUS) == "true",
            request_id=values.get(REQUEST_ID, ""),
            received=tuple(sorted({key.lower() for key, _ in pairs})),
        )
