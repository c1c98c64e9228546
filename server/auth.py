"""Who is calling, and may they call this method.

The identity domain plugs an `Authenticator` in; this module only knows the
contract: credentials in, principal out, and the method's AccessRule decides.
A non-public method with no authenticator willing to vouch for the caller is
refused (401): the secure default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Protocol

from google.protobuf import descriptor_pool
from relais.options.v1 import options_pb2

from server.errors import CsrfFailed, PermissionDenied, Unauthenticated

# Infrastructure services every gRPC tool expects to reach without credentials.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


# Peers whose x-forwarded-for is believed by default: the bridge running beside the server.
DEFAULT_TRUSTED_PROXIES = frozenset({"127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRule:
    public: bool = False
    allow_anonymous: bool = False
    permission: str = ""
    unmetered: bool = False


REQUIRE_AUTHENTICATION = AccessRule()


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller (or the anonymous one)."""

    subject: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    anonymous: bool = False
    user_id: int | None = None
    session_id: str | None = None
    api_key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or "*" in self.permissions

    def can(self, permission: str) -> bool:
        return "*" in self.permissions or permission in self.permissions


ANONYMOUS = Principal(subject="anonymous", roles=frozenset({"anonymous"}), anonymous=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What a call presented, read from gRPC metadata (the bridge forwards HTTP headers)."""

    bearer: str | None = None
    api_key: str | None = None
    cookie_token: str | None = None
    csrf_token: str | None = None
    session_id: str | None = None
    client_ip: str | None = None
    http_method: str | None = None

    @property
    def present(self) -> bool:
        return bool(self.bearer or self.api_key or self.cookie_token)

    @classmethod
    def from_metadata(
        cls,
        metadata: Iterable[tuple[str, str | bytes]],
        peer: str = "",
        trusted_proxies: frozenset[str] = DEFAULT_TRUSTED_PROXIES,
    ) -> Credentials:
        """Credentials of a call. The client address is the peer's, or the x-forwarded-for
        the peer sends when the peer is a trusted proxy (the bridge)."""
        values = {key: value for key, value in metadata if isinstance(value, str)}
        authorization = values.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        peer_ip = peer_address(peer)
        forwarded = values.get("x-forwarded-for", "") if peer_ip and peer_ip in trusted_proxies else ""
        forwarded = forwarded or peer_ip
        return cls(
            bearer=token.strip() or None if scheme.lower() == "bearer" else None,
            api_key=values.get("x-api-key") or None,
            cookie_token=_cookie(values.get("cookie", ""), "access_token"),
            csrf_token=values.get("x-csrf-token") or None,
            session_id=values.get("x-session-id") or None,
            client_ip=forwarded.split(",")[0].strip() or None,
            http_method=values.get("x-http-method") or None,
        )


def peer_address(peer: str) -> str:
    """'ipv4:127.0.0.1:5000' → '127.0.0.1'; 'ipv6:[::1]:5000' → '::1'."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return ""


def _cookie(header: str, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value or None if morsel else None


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> Principal | None:
        """The principal behind the credentials; None or Unauthenticated when they prove nothing."""
        ...


class AccessPolicy:
    """Reads each method's AccessRule from the descriptors once, then admits callers."""

    def __init__(self, *, allow_anonymous: bool = False, pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool or descriptor_pool.Default()
        self._rules: dict[str, AccessRule] = {}
        self.allow_anonymous = allow_anonymous

    def rule_for(self, method: str) -> AccessRule:
        """The rule of a full method name such as '/relais.v1.SystemService/GetHealth'."""
        rule = self._rules.get(method)
        if rule is None:
            rule = self._rules[method] = self._read_rule(method)
        return rule

    def _read_rule(self, method: str) -> AccessRule:
        service, _, name = method.strip("/").partition("/")
        if service in PUBLIC_SERVICES:
            return AccessRule(public=True, unmetered=True)
        try:
            descriptor = self._pool.FindMethodByName(f"{service}.{name}")
        except KeyError:
            return REQUIRE_AUTHENTICATION
        option = descriptor.GetOptions().Extensions[options_pb2.access]
        return AccessRule(
            public=option.public,
            allow_anonymous=option.allow_anonymous,
            permission=option.permission,
            unmetered=option.unmetered,
        )

    async def admit(self, rule: AccessRule, credentials: Credentials, authenticator: Authenticator) -> Principal | None:
        """The caller's principal, or Unauthenticated / PermissionDenied."""
        principal = await self._authenticate(rule, credentials, authenticator)
        if rule.public:
            return principal
        if principal is None:
            if rule.allow_anonymous and self.allow_anonymous:
                return ANONYMOUS
            raise Unauthenticated("Authentication required")
        if rule.permission and not principal.can(rule.permission):
            raise PermissionDenied(f"Permission '{rule.permission}' required")
        return principal

    @staticmethod
    async def _authenticate(
        rule: AccessRule, credentials: Credentials, authenticator: Authenticator
    ) -> Principal | None:
        if not credentials.present:
            return None
        try:
            return await authenticator.authenticate(credentials)
        except (Unauthenticated, CsrfFailed):
            # A stale token or cookie must not lock anyone out of public routes such as login.
            if rule.public:
                return None
            raise
