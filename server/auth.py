"""Who is calling, and may they call this method.

The identity domain plugs an `Authenticator` in; this module only knows the
contract: credentials in, principal out, and the method's AccessRule decides.
A non-public method with no authenticator willing to vouch for the caller is
refused (401): the secure default.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable
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


# The metadata key by which the bridge proves a forwarded address is its own finding.
BRIDGE_SECRET_KEY = "x-relais-bridge"


@dataclass(frozen=True, slots=True)
class ForwardingTrust:
    """Whose x-forwarded-for the server believes: a peer in `proxies` (addresses or networks the
    operator listed; none by default), or a caller presenting the bridge's `secret`."""

    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    secret: str | None = None

    @classmethod
    def of(cls, proxies: Iterable[str] = (), secret: str | None = None) -> ForwardingTrust:
        return cls(tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in proxies), secret or None)

    def is_proxy(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)

    def client(self, peer_ip: str, values: dict[str, str]) -> str:
        """The caller's address: the peer's, or the one a trusted forwarder names."""
        forwarded = values.get("x-forwarded-for", "")
        if not forwarded:
            return peer_ip
        given = values.get(BRIDGE_SECRET_KEY, "")
        if self.secret and given and hmac.compare_digest(given.encode(), self.secret.encode()):
            return forwarded.split(",")[-1].strip()[:64] or peer_ip
        if not self.is_proxy(peer_ip):
            return peer_ip
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # The right-most hop no trusted proxy added is the client; the rest could be forged.
        for hop in reversed(hops):
            if not self.is_proxy(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer_ip


NO_FORWARDING = ForwardingTrust()

# The peer of a call made by the bridge in this process (server/inprocess.py). Shaped as a
# Unix-socket peer, which peer parsers (OpenTelemetry's) leave alone; like any peer, it is
# believed to forward a client's address only with the bridge's secret.
IN_PROCESS_PEER = "unix:@relais-bridge-in-process"


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
    # The languages the caller reads (HTTP Accept-Language), for the messages people read.
    accept_language: str = ""

    @property
    def present(self) -> bool:
        return bool(self.bearer or self.api_key or self.cookie_token)

    @classmethod
    def from_metadata(
        cls,
        metadata: Iterable[tuple[str, str | bytes]],
        peer: str = "",
        trust: ForwardingTrust = NO_FORWARDING,
    ) -> Credentials:
        """Credentials of a call. The client address is the peer's, or the x-forwarded-for
        of a forwarder `trust` believes (the bridge, a listed proxy)."""
        values = {key: value for key, value in metadata if isinstance(value, str)}
        authorization = values.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        forwarded = trust.client(peer_address(peer), values)
        return cls(
            bearer=token.strip() or None if scheme.lower() == "bearer" else None,
            api_key=values.get("x-api-key") or None,
            cookie_token=_cookie(values.get("cookie", ""), "access_token"),
            csrf_token=values.get("x-csrf-token") or None,
            session_id=values.get("x-session-id") or None,
            client_ip=forwarded.split(",")[0].strip() or None,
            http_method=values.get("x-http-method") or None,
            accept_language=values.get("accept-language", "")[:256],
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
        # Rules of methods that come and go at run time (plugins' services), asked first, never cached.
        self.dynamic_rules: Callable[[str], AccessRule | None] | None = None

    def rule_for(self, method: str) -> AccessRule:
        """The rule of a full method name such as '/relais.v1.SystemService/GetHealth'."""
        if self.dynamic_rules is not None and (dynamic := self.dynamic_rules(method)) is not None:
            return dynamic
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
        return self.authorize(rule, principal)

    def authorize(self, rule: AccessRule, principal: Principal | None) -> Principal | None:
        """Whether an authenticated `principal` (None: no credentials) may call under `rule`."""
        if rule.public:
            return principal
        if principal is None:
            if rule.allow_anonymous and self.allow_anonymous:
                return ANONYMOUS
            if self.allow_anonymous:
                raise Unauthenticated("Authentication required: anonymous access does not cover this route")
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
