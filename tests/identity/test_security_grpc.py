"""Issue 12 items 1, 4, 5 and 6 over gRPC (their HTTP tests are in test_accounts.py,
test_delegation.py and test_limits_and_anonymous.py): the same services, the same refusals."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
from relais.v1 import (
    api_key_pb2,
    api_key_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    role_pb2,
    role_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
)

from tests.conftest import stack_settings
from tests.identity.helpers import admin, new_account, register, unique_email
from tests.support import services


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_a_scoped_key_mints_no_wider_key_over_grpc(http: httpx.Client, channel: grpc.Channel) -> None:
    keys = api_key_pb2_grpc.ApiKeyServiceStub(channel)
    root = [("authorization", admin(http).bearer["Authorization"])]
    scoped = keys.CreateApiKey(api_key_pb2.CreateApiKeyRequest(name="narrow", scopes=["users:read"]), metadata=root)
    by_key = [("x-api-key", scoped.key)]

    minted = keys.CreateApiKey(api_key_pb2.CreateApiKeyRequest(name="wide"), metadata=by_key)
    wider = _code(
        lambda: keys.CreateApiKey(api_key_pb2.CreateApiKeyRequest(name="w", scopes=["roles:read"]), metadata=by_key)
    )
    roles = _code(
        lambda: role_pb2_grpc.RoleServiceStub(channel).ListRoles(
            role_pb2.ListRolesRequest(), metadata=[("x-api-key", minted.key)]
        )
    )

    assert list(minted.api_key.scopes) == ["users:read"]
    assert wider == grpc.StatusCode.PERMISSION_DENIED and roles == grpc.StatusCode.PERMISSION_DENIED


def test_no_username_squats_another_email_over_grpc(http: httpx.Client, channel: grpc.Channel) -> None:
    squatter = new_account(http)
    metadata = [("authorization", squatter.bearer["Authorization"])]

    code = _code(
        lambda: user_pb2_grpc.UserServiceStub(channel).UpdateProfile(
            user_pb2.UpdateProfileRequest(username=unique_email("victim")), metadata=metadata
        )
    )

    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_delegate_grants_nothing_it_lacks_over_grpc(http: httpx.Client, channel: grpc.Channel) -> None:
    root = admin(http)
    name = f"d-{uuid.uuid4().hex[:8]}"
    role = http.post(
        "/admin/roles", headers=root.bearer, json={"name": name, "permissions": ["roles:write", "roles:read"]}
    )
    delegate = new_account(http)
    http.post(f"/admin/users/{delegate.user_id}/roles/{role.json()['id']}", headers=root.bearer).raise_for_status()
    signed_in = http.post("/auth/login", json={"email": delegate.email, "password": delegate.password}).json()
    metadata = [("authorization", f"Bearer {signed_in['access_token']}")]
    roles = role_pb2_grpc.RoleServiceStub(channel)

    star = _code(
        lambda: roles.CreateRole(role_pb2.CreateRoleRequest(name=f"s-{name}", permissions=["*"]), metadata=metadata)
    )
    beyond = _code(
        lambda: roles.CreateRole(
            role_pb2.CreateRoleRequest(name=f"b-{name}", permissions=["users:delete"]), metadata=metadata
        )
    )

    assert star == beyond == grpc.StatusCode.PERMISSION_DENIED


def test_twenty_parallel_wrong_passwords_over_grpc_meet_the_login_limit(tmp_path: Path) -> None:
    live = services.start_stack_with_test_service(
        stack_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", rate_limit_login="5/300s")
    )
    try:
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            email = unique_email()
            register(http, email)
        with grpc.insecure_channel(live.grpc_target) as channel:
            login = auth_pb2_grpc.AuthServiceStub(channel).Login

            def attempt(index: int) -> grpc.StatusCode:
                return _code(
                    lambda: login(auth_pb2.LoginRequest(email=email, password=f"wrong-pass-{index}"), timeout=60)
                )

            with ThreadPoolExecutor(max_workers=20) as pool:
                codes = list(pool.map(attempt, range(20)))
    finally:
        live.stop()

    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) == 5
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 15
