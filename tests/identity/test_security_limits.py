"""Issue 12 items 7-9: failed credentials count against the caller's address, forwarded
addresses are believed only from configured proxies (or the bridge's own secret), and the
login 429 describes the login limit. Over HTTP and gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from relais.v1 import auth_pb2, auth_pb2_grpc

from tests.conftest import stack_settings
from tests.identity.helpers import PASSWORD, login, register, unique_email
from tests.support import services
from tests.support.live import LiveStack


def start(tmp_path: Path, **settings: object) -> LiveStack:
    return services.start_stack_with_test_service(
        stack_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", **settings)
    )


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[LiveStack]:
    live = start(tmp_path, rate_limit_auth_failures="5/minute")
    yield live
    live.stop()


def test_garbage_bearer_tokens_are_counted_against_the_address(guarded: LiveStack) -> None:
    with httpx.Client(base_url=guarded.base_url, timeout=30) as http:
        email = unique_email()
        register(http, email)
        valid = {"Authorization": f"Bearer {login(http, email)['access_token']}"}
        codes = [http.get("/auth/me", headers={"Authorization": f"Bearer garbage-{i}"}) for i in range(7)]
        even_valid = http.get("/auth/me", headers=valid)
        public = http.get("/health", headers={"Authorization": "Bearer garbage"})
        signs_in = http.post("/auth/login", json={"email": email, "password": PASSWORD})

    assert [c.status_code for c in codes] == [401] * 5 + [429] * 2
    assert codes[-1].json()["code"] == "RATE_LIMIT" and int(codes[-1].headers["retry-after"]) >= 1
    assert codes[-1].headers["x-ratelimit-limit"] == "5" and codes[-1].headers["x-ratelimit-remaining"] == "0"
    # Until the window ends, this address's credentials are not even checked...
    assert even_valid.status_code == 429
    # ...but public routes still answer, as to a caller without credentials.
    assert public.status_code == 200 and signs_in.status_code == 200


def test_guessed_api_keys_over_grpc_are_counted_too(guarded: LiveStack) -> None:
    codes = []
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        me = auth_pb2_grpc.AuthServiceStub(channel).GetMe
        for index in range(7):
            try:
                me(auth_pb2.GetMeRequest(), metadata=[("x-api-key", f"rk_guess{index}")], timeout=10)
            except grpc.RpcError as error:
                codes.append(error.code())
                trailers = dict(error.trailing_metadata() or ())

    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    assert int(trailers["retry-after"]) >= 1


def _anonymous_codes(http: httpx.Client, forwarded: list[str]) -> list[int]:
    return [http.get("/v1/items/1", headers={"X-Forwarded-For": address}).status_code for address in forwarded]


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_configured(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_anonymous="2/minute")
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            spoofed = _anonymous_codes(http, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
        with grpc.insecure_channel(live.grpc_target) as channel:
            get_item = services.pb_grpc.TranscodingServiceStub(channel).GetItem
            try:
                metadata = [("x-forwarded-for", "198.51.100.4"), ("x-relais-bridge", "a guess")]
                get_item(services.pb.GetItemRequest(item_id=1), metadata=metadata, timeout=10)
                grpc_code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                grpc_code = error.code()
    finally:
        live.stop()

    # Every request is the loopback client's, whatever it claims: the third is over the limit,
    # and so is a gRPC call claiming another address (with a wrong bridge secret).
    assert spoofed == [200, 200, 429]
    assert grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_configured_proxy_names_the_client(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_anonymous="2/minute", trusted_proxies=frozenset({"127.0.0.0/8"}))
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            per_client = _anonymous_codes(http, ["198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2"])
            forged_chain = _anonymous_codes(http, ["203.0.113.1, 198.51.100.1"])
    finally:
        live.stop()

    assert per_client == [200, 200, 200, 200]
    # The proxy appended 198.51.100.1; what the client wrote before it is not believed.
    assert forged_chain == [429]


def test_the_login_429_describes_the_login_limit(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_login="3/300s", rate_limit_anonymous="1000/minute")
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            email = unique_email()
            register(http, email)
            answers = [http.post("/auth/login", json={"email": email, "password": "wrong-pass-9"}) for _ in range(4)]
        with grpc.insecure_channel(live.grpc_target) as channel:
            try:
                auth_pb2_grpc.AuthServiceStub(channel).Login(
                    auth_pb2.LoginRequest(email=email, password="wrong-pass-9"), timeout=10
                )
            except grpc.RpcError as error:
                grpc_code, trailers = error.code(), dict(error.trailing_metadata() or ())
    finally:
        live.stop()

    refused = answers[-1]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit"] == "3" and refused.headers["x-ratelimit-remaining"] == "0"
    assert grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailers["x-ratelimit-limit"] == "3" and int(trailers["retry-after"]) >= 1
