"""Path templates compile once and fail fast on mistakes."""

from __future__ import annotations

import pytest

from bridge.httprule import PathTemplate, TemplateError


@pytest.mark.parametrize(
    "template, path, expected",
    [
        ("/health", "/health", {}),
        ("/v1/items/{item_id}", "/v1/items/42", {"item_id": "42"}),
        ("/v1/items/{item.id}", "/v1/items/a%2Fb", {"item.id": "a/b"}),
        ("/v1/{name=shelves/*}/books", "/v1/shelves/s1/books", {"name": "shelves/s1"}),
        ("/v1/files/{path=**}", "/v1/files/a/b/c", {"path": "a/b/c"}),
        ("/v1/items/{id}:publish", "/v1/items/7:publish", {"id": "7"}),
    ],
)
def test_template_matches_and_extracts_variables(template: str, path: str, expected: dict[str, str]) -> None:
    assert PathTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize(
    "template, path",
    [
        ("/v1/items/{item_id}", "/v1/items"),
        ("/v1/items/{item_id}", "/v1/items/1/extra"),
        ("/v1/{name=shelves/*}/books", "/v1/racks/s1/books"),
        ("/v1/items/{id}:publish", "/v1/items/7"),
    ],
)
def test_template_rejects_other_paths(template: str, path: str) -> None:
    assert PathTemplate.parse(template).match(path) is None


@pytest.mark.parametrize(
    "template",
    [
        "health",
        "/v1/{bad-name}",
        "/v1/{a}/{a}",
        "/v1/{x=**}/{y=**}",
        "/v1/items:bad verb",
        "/v1/{x=a b}",
    ],
)
def test_malformed_template_fails_at_compile_time(template: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(template)


def test_literals_sort_before_variables_before_wildcards() -> None:
    templates = ["/api/agents/{id}", "/api/files/{p=**}", "/api/agents/my"]
    ordered = sorted((PathTemplate.parse(t) for t in templates), key=lambda t: t.specificity)
    assert [t.source for t in ordered] == ["/api/agents/my", "/api/agents/{id}", "/api/files/{p=**}"]
