"""What a plugin's descriptor set serves, checked against its manifest and against every route
that is already taken.

Each plugin owns the path namespace of its api_prefix ("/hello" owns /hello and /hello/…):
every google.api.http binding of its services must lie in it, no two plugins' namespaces may
overlap, and no namespace may start with a first path segment Relais itself uses (its bindings,
WebSocket routes and pages). So a plugin route can never shadow, or be shadowed by, another
route; the bridge still compiles the bindings with the same compiler as Relais' own and refuses
a duplicate.

    served = read_services(descriptor_set, manifest, taken)   # or RoutesRefused
    served.routes        # ("GET", "/hello/greet/{name}", "/hello.v1.HelloService/SayHello"), …
    served.methods       # "/hello.v1.HelloService/SayHello" → MethodInfo (streaming kinds, access rule)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError
from relais.options.v1 import options_pb2

from server.auth import AccessRule
from server.errors import InvalidArgument
from server.plugins.manifest import Manifest

HTTP_VERBS = ("get", "put", "post", "delete", "patch")
# Pages and sockets the bridge serves besides the bindings (bridge/pages.py, sockets).
RESERVED_SEGMENTS = frozenset(
    {"", "about", "static", "metrics", "docs", "redoc", "core-docs", "openapi.json", "ws", "favicon.ico"}
)
# Service packages a plugin may not define: Relais' own and the infrastructure ones.
RESERVED_PACKAGES = ("relais.", "google.", "grpc.")
_VARIABLE = re.compile(r"\{[^}]*\}")


class RoutesRefused(InvalidArgument):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The plugin's routes are refused: {reason}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodInfo:
    """A gRPC method a plugin serves, as the proxy forwards it."""

    full_method: str
    client_streaming: bool
    server_streaming: bool
    rule: AccessRule


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    method: str
    path: str
    rpc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedRoutes:
    services: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    methods: dict[str, MethodInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TakenRoutes:
    """What other plugins hold: their api_prefix and services, by plugin id."""

    prefixes: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)


def load_pool(descriptor_set: bytes) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding every file of the set; RoutesRefused when it is not one."""
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    except DecodeError as error:
        raise RoutesRefused(f"the descriptor set cannot be read ({error})") from None
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        try:
            pool.Add(file)
        except (TypeError, ValueError) as error:
            raise RoutesRefused(f"the descriptor set is inconsistent at {file.name} ({error})") from None
    return pool


def read_services(descriptor_set: bytes, manifest: Manifest, taken: TakenRoutes) -> ServedRoutes:
    """The services the manifest lists, their methods and routes, every rule checked."""
    if not manifest.services:
        return ServedRoutes()
    pool = load_pool(descriptor_set)
    services = [_service(pool, name, manifest, taken) for name in manifest.services]
    routes: list[Route] = []
    methods: dict[str, MethodInfo] = {}
    shapes: dict[tuple[str, str], str] = {}
    for service in services:
        for method in service.methods:
            full = f"/{service.full_name}/{method.name}"
            if method.client_streaming:
                raise RoutesRefused(f"{full} is client-streaming; plugins serve unary and server-streaming RPCs")
            rule = _access_rule(method, manifest)
            methods[full] = MethodInfo(
                full_method=full,
                client_streaming=method.client_streaming,
                server_streaming=method.server_streaming,
                rule=rule,
            )
            for verb, path in bindings(method):
                _check_path(path, manifest)
                shape = (verb, _VARIABLE.sub("{}", path))
                if shape in shapes:
                    raise RoutesRefused(f"{verb} {path} is bound twice ({shapes[shape]} and {full})")
                shapes[shape] = full
                routes.append(Route(method=verb, path=path, rpc=full))
    if routes:
        _check_prefix(manifest, taken)
    return ServedRoutes(services=manifest.services, routes=tuple(routes), methods=methods)


def _service(
    pool: descriptor_pool.DescriptorPool, name: str, manifest: Manifest, taken: TakenRoutes
) -> ServiceDescriptor:
    try:
        service = pool.FindServiceByName(name)
    except KeyError:
        raise RoutesRefused(f"service {name} is listed in the manifest but not in the descriptor set") from None
    if name.startswith(RESERVED_PACKAGES):
        raise RoutesRefused(f"service {name} uses a reserved package (relais., google., grpc.)")
    owner = taken.services.get(name)
    if owner is not None and owner != manifest.id:
        raise RoutesRefused(f"service {name} is already served by plugin {owner}")
    return service


def bindings(method: MethodDescriptor) -> list[tuple[str, str]]:
    """(VERB, path template) of each google.api.http binding of `method`."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    found = []
    for each in (rule, *rule.additional_bindings):
        verb = each.WhichOneof("pattern")
        if verb not in HTTP_VERBS:
            raise RoutesRefused(f"{method.full_name}: unsupported HTTP pattern {verb!r}")
        found.append((verb.upper(), getattr(each, verb)))
    return found


def _check_path(path: str, manifest: Manifest) -> None:
    prefix = manifest.api_prefix
    if not prefix:
        raise RoutesRefused(f"{path} is bound but the manifest declares no api_prefix")
    if ".." in path.split("/") or not (path == prefix or path.startswith((prefix + "/", prefix + ":"))):
        raise RoutesRefused(f"{path} lies outside the plugin's api_prefix {prefix}")


def _check_prefix(manifest: Manifest, taken: TakenRoutes) -> None:
    prefix = manifest.api_prefix
    first = prefix.split("/")[1]
    if first in RESERVED_SEGMENTS or first in builtin_segments():
        raise RoutesRefused(f"api_prefix {prefix} collides with Relais' own routes under /{first}")
    mine = prefix.split("/")
    for owner, other in taken.prefixes.items():
        if owner == manifest.id or not other:
            continue
        theirs = other.split("/")
        shorter = min(len(mine), len(theirs))
        if mine[:shorter] == theirs[:shorter]:
            raise RoutesRefused(f"api_prefix {prefix} collides with plugin {owner}'s {other}")


def _access_rule(method: MethodDescriptor, manifest: Manifest) -> AccessRule:
    option = method.GetOptions().Extensions[options_pb2.access]
    if (option.public or option.allow_anonymous) and "routes:public" not in manifest.permissions:
        raise RoutesRefused(f"{method.full_name} is open to anonymous callers without the routes:public permission")
    # Plugin routes are always metered: `unmetered` is for Relais' own health probes.
    return AccessRule(public=option.public, allow_anonymous=option.allow_anonymous, permission=option.permission)


@cache
def builtin_segments() -> frozenset[str]:
    """First path segments of Relais' own bindings and WebSocket routes."""
    data = resources.files("relais").joinpath("descriptors.binpb").read_bytes()
    segments: set[str] = set()
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        if not file.package.startswith("relais."):
            continue
        for service in file.service:
            for method in service.method:
                segments.update(_first_segments(method.options))
    return frozenset(segments)


def _first_segments(options: descriptor_pb2.MethodOptions) -> set[str]:
    paths: list[str] = []
    if options.HasExtension(annotations_pb2.http):
        rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
        for each in (rule, *rule.additional_bindings):
            verb = each.WhichOneof("pattern")
            if verb in HTTP_VERBS:
                paths.append(getattr(each, verb))
    if options.HasExtension(options_pb2.stream):
        paths.extend(socket.path for socket in options.Extensions[options_pb2.stream].websockets)
    return {path.split("/")[1].split(":")[0] for path in paths if path.startswith("/")}
