"""Every route in the descriptors: no credentials → 401, a plain user on an admin route → 403.

Public routes are listed here explicitly; a new public route must be added on purpose.
"""

from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
import socketio
from google.protobuf import message_factory
from relais.options.v1 import options_pb2
from websockets.exceptions import ConnectionClosed, InvalidStatus
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


def error_type(response: httpx.Response) -> str:
    """The error body's code, or the type of OpenAI's error body (the /v1 routes')."""
    body = response.json()
    return str(body["code"]) if "code" in body else str(body["error"]["type"]).upper()


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
        assert error_type(response) == "AUTHENTICATION_ERROR"


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
    assert error_type(response) == "AUTHORIZATION_ERROR"


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
    url = f"ws://127.0.0.1:{port}{socket.path}"
    if socket.dialect == options_pb2.STREAM_DIALECT_XCORE_EVENTS:
        # xcore's protocol: accepted, then closed with 4401 when no valid auth message comes.
        with connect(url) as opened:
            opened.send('{"type": "auth", "token": ""}')
            with pytest.raises(ConnectionClosed) as closed:
                opened.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    elif socket.dialect == options_pb2.STREAM_DIALECT_SOCKETIO_ROOMS:
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(f"http://127.0.0.1:{port}", socketio_path=socket.path, transports=["websocket"])
    else:
        with pytest.raises(InvalidStatus) as caught, connect(url):
            pass
        assert caught.value.response.status_code == 401


# Every permission an admin route asks for, but "*": holding it is being an administrator.
ADMIN_PERMISSIONS = sorted({b.access.permission for b in ADMIN_BINDINGS} - {"*"})


def _delegate(http: httpx.Client, permission: str) -> dict[str, str]:
    """A signed-in user whose only extra right is `permission`, delegated through a role."""
    from tests.identity.helpers import admin, login

    root = admin(http)
    name = f"only-{permission.replace(':', '-').replace('*', 'all')}-{uuid.uuid4().hex[:6]}"
    role = http.post("/admin/roles", headers=root.bearer, json={"name": name, "permissions": [permission]})
    assert role.status_code == 201, role.text
    holder = new_account(http)
    granted = http.post(f"/admin/users/{holder.user_id}/roles/{role.json()['id']}", headers=root.bearer)
    assert granted.status_code in (200, 201, 204), granted.text
    return {"Authorization": f"Bearer {login(http, holder.email)['access_token']}"}


def _scoped_key(http: httpx.Client, permission: str) -> dict[str, str]:
    """An administrator's API key narrowed to `permission`."""
    from tests.identity.helpers import admin

    key = http.post("/api/keys", headers=admin(http).bearer, json={"name": "walk", "scopes": [permission]})
    assert key.status_code == 201, key.text
    return {"X-API-Key": key.json()["key"]}


@pytest.mark.parametrize("holder", ["delegated role", "scoped key"])
@pytest.mark.parametrize("permission", ADMIN_PERMISSIONS)
def test_a_holder_of_one_admin_permission_cannot_exceed_it(http: httpx.Client, permission: str, holder: str) -> None:
    headers = _delegate(http, permission) if holder == "delegated role" else _scoped_key(http, permission)
    beyond = [b for b in ADMIN_BINDINGS if b.access.permission != permission]

    refused = {
        f"{b.http_method} {b.template.source}": http.request(
            b.http_method, url_of(b), headers=headers, json={} if b.body else None
        ).status_code
        for b in beyond
    }

    assert beyond and set(refused.values()) == {403}, {route: code for route, code in refused.items() if code != 403}
