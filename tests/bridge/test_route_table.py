"""The route table picks, for any URL and method, the route a scan over every contract route
in order picks (the first full match, else the first partial one), while trying only the routes
that share the URL's first segment."""

from __future__ import annotations

import itertools
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Match

from bridge.bindings import compile_bindings, contract_services
from bridge.httprule import PathTemplate, Variable
from bridge.routes import ProtoRoute, RouteTable, Transcoder, proto_routes

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ROUTES = proto_routes(compile_bindings(contract_services()), cast(Transcoder, None))
TABLE = RouteTable(ROUTES)


def scanned(scope: dict[str, Any]) -> tuple[Match, ProtoRoute | None]:
    """What Starlette's router does over the routes one by one."""
    partial: tuple[Match, ProtoRoute | None] | None = None
    for route in ROUTES:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return match, route
        if match is Match.PARTIAL and partial is None:
            partial = (match, route)
    return partial or (Match.NONE, None)


def picked(scope: dict[str, Any]) -> tuple[Match, ProtoRoute | None]:
    match, child = TABLE.matches(scope)
    return match, child.get("relais.proto_route")


def sample_path(template: PathTemplate, value: str) -> str:
    parts = []
    for segment in template.segments:
        if isinstance(segment, Variable):
            parts.extend("a/b" if part == "**" else (value if part == "*" else part) for part in segment.segments)
        else:
            parts.append("a/b" if segment == "**" else (value if segment == "*" else segment))
    return "/" + "/".join(parts) + (f":{template.verb}" if template.verb else "")


def paths() -> list[str]:
    found = {"/", "", "/nowhere", "/api", "/api/", "/health/", "/v1", "/ws/socket.io/"}
    for route in ROUTES:
        template = route.binding.template
        for value in ("7", "my", "search", "a:b"):
            path = sample_path(template, value)
            found |= {path, path + "/", path + "/extra", path.rsplit("/", 1)[0]}
    return sorted(found)


def test_every_contract_url_and_method_gets_the_scans_route() -> None:
    checked = 0
    for path, method in itertools.product(paths(), METHODS):
        scope = {"type": "http", "path": path, "method": method}
        assert picked(scope) == scanned(scope), (method, path)
        checked += picked(scope)[0] is Match.FULL
    # The sample URLs do reach the routes: every binding is picked for its own URL and method.
    assert checked >= len(ROUTES)


def test_only_routes_sharing_the_first_segment_are_tried() -> None:
    tried = TABLE.candidates("/health")
    assert 0 < len(tried) < len(ROUTES) / 10
    assert all(route.path.startswith("/health") or route.path.startswith("/{") for route in tried)


SEGMENTS = st.sampled_from(["api", "chats", "7", "my", "health", "v1", "models", "", "x:y", "auth", "me", "admin"])


@given(st.lists(SEGMENTS, max_size=5), st.sampled_from(METHODS))
def test_any_path_gets_the_scans_route(segments: list[str], method: str) -> None:
    scope = {"type": "http", "path": "/" + "/".join(segments), "method": method}
    assert picked(scope) == scanned(scope)


def test_websockets_are_not_matched() -> None:
    assert TABLE.matches({"type": "websocket", "path": "/health"}) == (Match.NONE, {})


def test_routes_starting_with_a_variable_stay_in_their_place() -> None:
    """Plugin routes may start with a variable or a verb: such a route is tried for every URL,
    at its place among the others."""
    from types import SimpleNamespace

    sources = ["/api/items", "/{name}:publish", "/{kind}/items", "/api/{item}", "/batch:run", "/{rest=**}"]
    bindings = [
        SimpleNamespace(template=PathTemplate.parse(source), http_method=method, route_name=source, full_method="")
        for source, method in zip(sources, ["GET", "POST", "GET", "DELETE", "POST", "GET"], strict=True)
    ]
    routes = proto_routes(cast(Any, bindings), cast(Transcoder, None))
    table = RouteTable(routes)
    for path, method in itertools.product(
        ["/api/items", "/x:publish", "/api:publish", "/x/items", "/api/7", "/batch:run", "/a/b/c", "/", "/api"],
        METHODS,
    ):
        scope = {"type": "http", "path": path, "method": method}
        partial = None
        for route in routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                expected = (match, route)
                break
            if match is Match.PARTIAL and partial is None:
                partial = (match, route)
        else:
            expected = partial or (Match.NONE, None)
        match, child = table.matches(scope)
        assert (match, child.get("relais.proto_route")) == expected, (method, path)
