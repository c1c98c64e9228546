"""Every route in the descriptors: no credentials → 401, a plain user on an admin route → 403.

Public routes are listed here explicitly; a new public route must be added on purpose.
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bridge.bindings import Binding, WebSocketBinding, compile_bindings, compile_websockets, contract_services
from tests.identity.helpers import new_account

PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("POST", "/auth/login"),
    ("POST", "/api/auth/login"),
    ("POST", "/auth/register"),
    ("POST", "/api/auth/register"),
    ("POST", "/user/register"),
    ("POST", "/auth/refresh"),
    ("POST", "/api/auth/refresh"),
    ("GET", "/api/models"),
    ("GET", "/api/agents"),
    ("GET", "/api/agents/{agent_id}"),
}
BINDINGS = compile_bindings(contract_services())


def url_of(binding: Binding) -> str:
    path = binding.template.source
    for variable in binding.template.variables:
        path = path.replace(f"{{{variable.field_path}}}", "1")
    return path


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: f"{b.http_method} {b.template.source}")
def test_route_refuses_anonymous_callers_unless_public(http: httpx.Client, binding: Binding) -> None:
    response = http.request(binding.http_method, url_of(binding), json={} if binding.body else None)

    if (binding.http_method, binding.template.source) in PUBLIC_ROUTES:
        assert binding.access.public
        # Reached the operation (refresh still answers 401 to a request without any token).
        assert response.json().get("detail") != "Authentication required"
    else:
        assert not binding.access.public, "a public route missing from PUBLIC_ROUTES"
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "AUTHENTICATION_ERROR"


ADMIN_BINDINGS = [b for b in BINDINGS if b.access.permission]


def test_admin_routes_exist() -> None:
    assert {b.template.source for b in ADMIN_BINDINGS} >= {"/admin/users", "/admin/roles", "/admin/permissions"}


@pytest.mark.parametrize("binding", ADMIN_BINDINGS, ids=lambda b: f"{b.http_method} {b.template.source}")
def test_admin_route_refuses_a_plain_user(http: httpx.Client, binding: Binding) -> None:
    user = new_account(http)

    response = http.request(
        binding.http_method, url_of(binding), headers=user.bearer, json={} if binding.body else None
    )

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "AUTHORIZATION_ERROR"


METHODS = sorted(
    {(b.method.containing_service.full_name, b.method.name, b.method) for b in BINDINGS}, key=lambda m: m[:2]
)


@pytest.mark.parametrize("service, name, method", METHODS, ids=lambda v: v if isinstance(v, str) else "")
def test_rpc_refuses_anonymous_callers_unless_public(
    channel: grpc.Channel, service: str, name: str, method: object
) -> None:
    descriptor = method
    request_class = message_factory.GetMessageClass(descriptor.input_type)  # type: ignore[attr-defined]
    response_class = message_factory.GetMessageClass(descriptor.output_type)  # type: ignore[attr-defined]
    streaming = descriptor.server_streaming  # type: ignore[attr-defined]
    factory = channel.unary_stream if streaming else channel.unary_unary
    call = factory(f"/{service}/{name}", request_class.SerializeToString, response_class.FromString)
    public = any(b.access.public for b in BINDINGS if b.method is descriptor)

    try:
        result = call(request_class(), timeout=10)
        if streaming:
            list(result)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
        if public and code == grpc.StatusCode.UNAUTHENTICATED:
            assert error.details() != "Authentication required"

    if public:
        assert code != grpc.StatusCode.UNAUTHENTICATED or name == "Refresh"
    else:
        assert code == grpc.StatusCode.UNAUTHENTICATED


SOCKETS = compile_websockets(contract_services())


@pytest.mark.parametrize("socket", SOCKETS, ids=lambda s: s.path)
def test_websocket_refuses_anonymous_callers(stack: object, socket: WebSocketBinding) -> None:
    port = stack.http_port  # type: ignore[attr-defined]
    with pytest.raises(InvalidStatus) as caught, connect(f"ws://127.0.0.1:{port}{socket.path}"):
        pass
    assert caught.value.response.status_code == 401
