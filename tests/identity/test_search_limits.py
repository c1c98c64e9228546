"""Issue 12 item 11: search strings are capped (declared in /openapi.json, enforced over HTTP and
gRPC) and `%` / `_` in them are plain characters, never LIKE wildcards."""

from __future__ import annotations

import grpc
import httpx
from relais.v1 import admin_user_pb2, admin_user_pb2_grpc

from tests.identity.helpers import admin, new_account, register, unique_email


def test_a_huge_search_is_a_422_naming_the_field_not_a_500(http: httpx.Client, channel: grpc.Channel) -> None:
    root, owner = admin(http), new_account(http)
    huge = "ab%_" * 6_000  # 24,000 characters, LIKE wildcards included

    users = http.get("/admin/users", params={"search": huge}, headers=root.bearer)
    conversations = http.get("/api/conversations", params={"search": huge}, headers=owner.bearer)
    try:
        admin_user_pb2_grpc.AdminUserServiceStub(channel).ListUsers(
            admin_user_pb2.ListUsersRequest(search=huge), metadata=[("authorization", root.bearer["Authorization"])]
        )
        grpc_code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        grpc_code = error.code()

    for response in (users, conversations):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"] == [
            {"field": "search", "message": "must have at most 200 characters"}
        ]
    assert grpc_code == grpc.StatusCode.INVALID_ARGUMENT


def test_the_cap_is_declared_in_openapi(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()

    for path in ("/admin/users", "/api/conversations"):
        search = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "search")
        assert search["schema"]["maxLength"] == 200


def test_percent_and_underscore_match_only_themselves(http: httpx.Client) -> None:
    root = admin(http)
    plain = unique_email("under_score")
    register(http, plain)

    wildcard = http.get("/admin/users", params={"search": "%"}, headers=root.bearer).json()
    underscore = http.get("/admin/users", params={"search": "under_score"}, headers=root.bearer).json()
    one_char = http.get("/admin/users", params={"search": "under_scor_"}, headers=root.bearer).json()

    assert wildcard["total"] == 0
    assert [user["email"] for user in underscore["items"]] == [plain]
    assert one_char["total"] == 0
