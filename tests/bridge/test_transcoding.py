"""HttpRule mapping through the live bridge: path, query, body, additional bindings,
response_body, HttpBody, and the custom options (cookie, envelope, success status)."""

from __future__ import annotations

import httpx


def test_path_variable_and_query_parameters_fill_the_request(http: httpx.Client) -> None:
    response = http.get(
        "/v1/items/42",
        params=[
            ("page_size", "5"),
            ("tags", "x"),
            ("tags", "y"),
            ("kind", "magazine"),
            ("filter.q", "tea"),
            ("filter.active", "true"),
            ("since", "2024-01-15T10:30:00Z"),
            ("unknown", "ignored"),
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 42 and isinstance(body["id"], int)
    assert body["page_size"] == 5
    assert body["tags"] == ["x", "y"]
    assert body["kind"] == "magazine"
    assert body["filter"] == {"q": "tea", "active": True}
    assert body["created_at"] == "2024-01-15T10:30:00Z"


def test_additional_binding_routes_to_the_same_rpc_with_its_own_variables(http: httpx.Client) -> None:
    response = http.get("/v1/shelves/fiction/items/7")

    assert response.status_code == 200
    assert response.json()["shelf"] == "fiction"
    assert response.json()["id"] == 7


def test_every_field_is_printed_with_the_json_conventions(http: httpx.Client) -> None:
    body = http.get("/v1/items/1").json()

    assert body == {
        "id": 1,
        "shelf": "",
        "name": "echo",
        "kind": None,
        "tags": [],
        "page_size": 0,
        "filter": None,
        "created_at": None,
        "note": None,
        "counts": {},
        "price": 0.0,
        "blob": "",
        "big": 0,
    }


def test_body_field_binding_takes_the_body_and_path(http: httpx.Client) -> None:
    response = http.post(
        "/v1/shelves/poetry/items",
        params={"validate_only": "true"},
        json={
            "name": "Alcools",
            "kind": "book",
            "big": 18446744073709551615,
            "counts": {"a": 1},
            "note": "x",
            "blob": "aGk=",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert body["shelf"] == "poetry" and body["name"] == "Alcools" and body["kind"] == "book"
    assert body["big"] == 18446744073709551615
    assert body["counts"] == {"a": 1}
    assert body["note"] == "validated"
    assert body["blob"] == "aGk="


def test_whole_body_binding_with_a_nested_path_variable(http: httpx.Client) -> None:
    response = http.put("/v1/items/9", json={"item": {"id": 1, "name": "Book"}, "reason": "typo"})

    assert response.status_code == 200
    assert response.json()["id"] == 9  # the path wins over the body
    assert response.json()["name"] == "Book (typo)"


def test_form_encoded_body_maps_like_query_parameters(http: httpx.Client) -> None:
    response = http.put("/v1/items/3", data={"item.name": "Form", "reason": "form"})

    assert response.status_code == 200
    assert response.json()["name"] == "Form (form)"


def test_literal_path_wins_over_a_variable(http: httpx.Client) -> None:
    assert http.get("/v1/items/special").json()["name"] == "special"


def test_response_body_returns_only_that_field(http: httpx.Client) -> None:
    assert http.get("/v1/items/3/tags").json() == ["a", "b"]


def test_multi_segment_variable_and_http_body_response(http: httpx.Client) -> None:
    response = http.get("/v1/files/docs/guide%20v2/readme.txt")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.content == b"file:docs/guide v2/readme.txt"


def test_cookie_is_set_from_a_response_field(http: httpx.Client) -> None:
    response = http.post("/v1/sessions", json={"user": "ada"})

    assert response.status_code == 200
    assert response.json() == {"token": "tok-ada", "expires_in": 3600, "user": "ada"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("access_token=tok-ada;")
    assert "HttpOnly" in cookie and "Max-Age=3600" in cookie and "Path=/" in cookie and "SameSite=lax" in cookie


def test_envelope_applies_only_to_its_binding(http: httpx.Client) -> None:
    response = http.post("/v1/wrapped/sessions", json={"user": "bob"})

    assert response.status_code == 200
    assert response.json() == {"data": {"token": "tok-bob", "expires_in": 3600, "user": "bob"}, "status": "success"}
    assert "access_token=tok-bob" in response.headers["set-cookie"]


def test_no_content_status_has_no_body(http: httpx.Client) -> None:
    response = http.delete("/v1/items/5", headers={"Authorization": "Bearer admin-token"})

    assert response.status_code == 204
    assert response.content == b""


def test_credentials_reach_the_server_as_metadata(http: httpx.Client) -> None:
    by_bearer = http.get("/v1/whoami", headers={"Authorization": "Bearer user-token"})
    by_cookie = http.get("/v1/whoami", headers={"Cookie": "theme=dark; access_token=admin-token"})
    by_key = http.get("/v1/whoami", headers={"X-API-Key": "user-token"})

    assert [r.json()["subject"] for r in (by_bearer, by_cookie, by_key)] == ["user", "admin", "user"]


def test_request_id_is_echoed_and_generated(http: httpx.Client) -> None:
    given = http.get("/health", headers={"X-Request-ID": "client-chosen-1"})
    generated = http.get("/health")

    assert given.headers["x-request-id"] == "client-chosen-1"
    assert generated.headers["x-request-id"].startswith("req_")


def test_cookie_value_outside_header_charset_is_percent_encoded(http: httpx.Client) -> None:
    # Found by fuzzing: a non-latin-1 cookie value used to crash the response (bare 500).
    response = http.post("/v1/sessions", data={"user": "zoë✓"})

    assert response.status_code == 200
    assert response.headers["set-cookie"].startswith("access_token=tok-zo%C3%AB%E2%9C%93;")


def test_null_json_body_means_no_fields(http: httpx.Client) -> None:
    # Found by fuzzing: the schema allows null for an optional body field.
    response = http.post("/v1/shelves/s/items", content=b"null", headers={"content-type": "application/json"})

    assert response.status_code == 201
    assert response.json()["shelf"] == "s"
