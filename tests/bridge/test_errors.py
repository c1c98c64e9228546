"""Every gRPC status reaches HTTP clients as the right status and the unified error body."""

from __future__ import annotations

import grpc
import httpx
import pytest

from tests.support.services import pb, pb_grpc

EXPECTED = [
    ("INVALID_ARGUMENT", 400, "BAD_REQUEST"),
    ("NOT_FOUND", 404, "NOT_FOUND"),
    ("ALREADY_EXISTS", 409, "CONFLICT"),
    ("PERMISSION_DENIED", 403, "AUTHORIZATION_ERROR"),
    ("UNAUTHENTICATED", 401, "AUTHENTICATION_ERROR"),
    ("FAILED_PRECONDITION", 400, "FAILED_PRECONDITION"),
    ("RESOURCE_EXHAUSTED", 429, "RATE_LIMIT"),
    ("PAYLOAD_TOO_LARGE", 413, "PAYLOAD_TOO_LARGE"),
    ("UNAVAILABLE", 503, "UNAVAILABLE"),
    ("DEADLINE_EXCEEDED", 504, "TIMEOUT"),
]


def assert_error_body(body: dict[str, object], *, code: str, message: str, request_id: str) -> None:
    assert body["detail"] == message and body["code"] == code and body["status"] == "error"
    assert body["request_id"] == request_id
    assert isinstance(body["timestamp"], str) and body["timestamp"].endswith("Z")
    nested = body["error"]
    assert isinstance(nested, dict)
    assert nested["code"] == code and nested["message"] == message and nested["request_id"] == request_id


@pytest.mark.parametrize("grpc_code, http_status, code", EXPECTED)
def test_domain_error_maps_to_http_status_and_body(
    http: httpx.Client, grpc_code: str, http_status: int, code: str
) -> None:
    response = http.post("/v1/fail", json={"code": grpc_code, "message": f"boom {grpc_code}"})

    assert response.status_code == http_status
    assert_error_body(
        response.json(), code=code, message=f"boom {grpc_code}", request_id=response.headers["x-request-id"]
    )


def test_field_validation_is_422_with_field_details(http: httpx.Client) -> None:
    response = http.post("/v1/fail", json={"invalid_fields": ["email", "password"]})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"] == [
        {"field": "email", "message": "is invalid"},
        {"field": "password", "message": "is invalid"},
    ]


def test_unexpected_exception_is_500_without_internal_text(http: httpx.Client) -> None:
    response = http.post("/v1/fail", json={"crash": True})

    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "INTERNAL_ERROR"
    assert "secret internal detail" not in response.text
    assert response.headers["x-request-id"] in body["detail"]


def test_grpc_clients_get_rich_status_details(channel: grpc.Channel) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    stub = pb_grpc.TranscodingServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Fail(pb.FailRequest(invalid_fields=["email"]), metadata=[("x-request-id", "rid-1")])

    status = rpc_status.from_call(raised.value)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    kinds = {detail.type_url.rsplit(".", 1)[-1]: detail for detail in status.details}
    info, bad, request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest(), error_details_pb2.RequestInfo()
    kinds["ErrorInfo"].Unpack(info)
    kinds["BadRequest"].Unpack(bad)
    kinds["RequestInfo"].Unpack(request)
    assert info.reason == "VALIDATION_ERROR" and info.domain == "relais"
    assert [v.field for v in bad.field_violations] == ["email"]
    assert request.request_id == "rid-1"


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/v1/items/abc", {}, "item_id"),
        ("/v1/items/1", {"page_size": "many"}, "page_size"),
        ("/v1/items/1", {"page_size": "99999999999"}, "page_size"),
        ("/v1/items/1", {"kind": "newspaper"}, "kind"),
        ("/v1/items/1", {"since": "yesterday"}, "since"),
    ],
)
def test_bad_path_or_query_value_is_422_naming_the_field(
    http: httpx.Client, path: str, params: dict[str, str], field: str
) -> None:
    response = http.get(path, params=params)

    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_every_bad_body_field_is_reported_at_once(http: httpx.Client) -> None:
    response = http.post("/v1/shelves/s/items", json={"id": "x", "tags": "notalist", "filter": {"active": "maybe"}})

    assert response.status_code == 422
    fields = sorted(d["field"] for d in response.json()["error"]["details"])
    assert fields == ["item.filter.active", "item.id", "item.tags"]


def test_malformed_json_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/fail", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_unsupported_content_type_is_415(http: httpx.Client) -> None:
    response = http.post("/v1/fail", content=b"<xml/>", headers={"content-type": "application/xml"})

    assert response.status_code == 415


def test_oversized_body_is_413_before_reaching_the_server(http: httpx.Client) -> None:
    response = http.post("/v1/fail", json={"message": "x" * 70_000})

    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_oversized_chunked_body_is_413(http: httpx.Client) -> None:
    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"x" * 8192

    response = http.post("/v1/fail", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413


def test_unknown_route_is_404_and_wrong_method_is_405(http: httpx.Client) -> None:
    missing = http.get("/no/such/route")
    wrong = http.post("/health")

    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    assert wrong.status_code == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["allow"] == "GET, OPTIONS"


def test_permission_is_enforced(http: httpx.Client) -> None:
    anonymous = http.delete("/v1/items/1")
    plain_user = http.delete("/v1/items/1", headers={"Authorization": "Bearer user-token"})
    bad_token = http.delete("/v1/items/1", headers={"Authorization": "Bearer forged"})

    assert anonymous.status_code == 401
    assert plain_user.status_code == 403 and plain_user.json()["code"] == "AUTHORIZATION_ERROR"
    assert bad_token.status_code == 401


def test_public_route_ignores_a_stale_token(http: httpx.Client) -> None:
    assert http.get("/health", headers={"Authorization": "Bearer stale"}).status_code == 200


def _nested(depth: int, *, lists: bool = False) -> object:
    value: object = "fond"
    for _ in range(depth):
        value = [value] if lists else {"n": value}
    return value


@pytest.mark.parametrize("lists", [False, True], ids=["objects", "lists"])
def test_deep_json_is_refused_naming_its_field_before_protobuf(http: httpx.Client, lists: bool) -> None:
    from tests.identity.helpers import new_account

    owner = new_account(http)
    deep = {"content": "Une note", "metadata": {"deep": _nested(60, lists=lists)}}
    fine = {"content": "Une note", "metadata": {"deep": _nested(5, lists=lists)}}

    refused = http.post("/api/memory", json=deep, headers=owner.bearer)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["field"] == "metadata"
    assert "levels deep" in refused.json()["error"]["details"][0]["message"]
    assert http.post("/api/memory", json=fine, headers=owner.bearer).status_code in (201, 503)


@pytest.mark.parametrize("header", ["Authorization", "Cookie", "X-Api-Key"])
def test_oversized_headers_are_431_not_a_rate_limit(http: httpx.Client, header: str) -> None:
    value = "Bearer " + "a" * 100_000 if header == "Authorization" else "access_token=" + "a" * 100_000
    if header == "X-Api-Key":
        value = "rk_" + "a" * 100_000

    response = http.get("/auth/me", headers={header: value})

    assert response.status_code == 431, response.text
    assert response.json()["code"] == "REQUEST_HEADERS_TOO_LARGE"
    assert header.lower() in response.json()["detail"].lower()


def test_many_headers_together_are_431_too(http: httpx.Client) -> None:
    headers = {f"X-Filler-{index}": "b" * 4000 for index in range(6)}

    assert http.get("/health", headers=headers).status_code == 431


def test_grpc_transport_failures_never_name_python_exceptions() -> None:
    from bridge.errors import rpc_failure

    for code, details in [
        (grpc.StatusCode.INTERNAL, "Exception deserializing request!"),
        (grpc.StatusCode.UNKNOWN, "Unexpected <class 'google.protobuf.message.DecodeError'>: Error parsing message"),
    ]:
        failure = rpc_failure(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details))

        assert failure.status == 500
        assert "Exception" not in failure.message and "class" not in failure.message and "Error" not in failure.message
