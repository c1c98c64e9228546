"""Sign-in, registration, tokens, CSRF, logout and refresh, as every seed documents them."""

from __future__ import annotations

import secrets
import string

import grpc
import httpx
import pytest
from relais.v1 import auth_pb2, auth_pb2_grpc

from tests.identity.helpers import PASSWORD, new_account, register, unique_email
from tests.support.live import LiveStack

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "csrf_token", "session_id", "user"}


@pytest.mark.parametrize("path", ["/auth/register", "/api/auth/register", "/user/register"])
def test_registration_at_every_documented_path(http: httpx.Client, path: str) -> None:
    email = unique_email()
    response = http.post(path, json={"email": email, "password": PASSWORD, "name": "Nom Prénom"})

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email and body["name"] == body["full_name"] == "Nom Prénom"
    assert body["is_active"] is True and body["roles"] == ["user"] and body["is_admin"] is False
    assert body["created_at"].endswith("Z") and isinstance(body["id"], int)


def test_registration_accepts_full_name_and_trigramme(http: httpx.Client) -> None:
    trigramme = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    body = register(http, full_name="John Doe", trigramme=trigramme.lower())

    assert body["full_name"] == "John Doe" and body["trigramme"] == trigramme


def test_duplicate_email_or_trigramme_is_409(http: httpx.Client) -> None:
    email = unique_email()
    trigramme = "".join(secrets.choice(string.ascii_uppercase) for _ in range(4))
    register(http, email, trigramme=trigramme)
    again = http.post("/auth/register", json={"email": email.upper(), "password": PASSWORD})
    same_trigramme = http.post(
        "/api/auth/register", json={"email": unique_email(), "password": PASSWORD, "trigramme": trigramme.lower()}
    )

    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"
    assert same_trigramme.status_code == 409 and "Trigramme" in same_trigramme.json()["detail"]


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({"email": "not-an-email", "password": PASSWORD}, ["email"]),
        ({"email": "ok@example.com", "password": "short1"}, ["password"]),
        ({"email": "ok@example.com", "password": "onlyletters"}, ["password"]),
        # One message a field: the contract's bounds name the first limit each field breaks.
        ({"email": "bad", "password": "x", "trigramme": "TOOLONG"}, ["email", "password", "trigramme"]),
    ],
)
def test_invalid_registration_is_422_with_every_field(
    http: httpx.Client, payload: dict[str, str], fields: list[str]
) -> None:
    response = http.post("/auth/register", json=payload)

    assert response.status_code == 422
    assert sorted(d["field"] for d in response.json()["error"]["details"]) == sorted(fields)


@pytest.mark.parametrize("key", ["user", "username", "email"])
def test_login_with_json_in_every_spelling(http: httpx.Client, key: str) -> None:
    email = unique_email()
    register(http, email)

    response = http.post("/auth/login", json={key: email, "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["user"]["email"] == email
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"access_token={body['access_token']};") and "HttpOnly" in cookie


def test_login_with_the_oauth2_password_form(http: httpx.Client) -> None:
    email = unique_email()
    register(http, email)

    response = http.post("/auth/login", data={"username": email, "password": PASSWORD, "grant_type": "password"})

    assert response.status_code == 200 and response.json()["access_token"]


def test_wrong_password_unknown_account_and_missing_fields(http: httpx.Client) -> None:
    email = unique_email()
    register(http, email)

    wrong = http.post("/api/auth/login", json={"email": email, "password": "wrong-pass-1"})
    unknown = http.post("/api/auth/login", json={"email": unique_email(), "password": PASSWORD})
    missing = http.post("/api/auth/login", json={})

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "Invalid credentials"
    assert missing.status_code == 422


def test_me_by_bearer_and_by_cookie(http: httpx.Client) -> None:
    account = new_account(http)

    by_bearer = http.get("/auth/me", headers=account.bearer)
    by_cookie = http.get("/api/auth/me", headers={"Cookie": f"access_token={account.tokens['access_token']}"})

    assert by_bearer.status_code == by_cookie.status_code == 200
    assert by_bearer.json() == by_cookie.json()
    assert by_bearer.json()["email"] == account.email and by_bearer.json()["last_login"] is not None


def test_cookie_calls_that_change_state_need_the_csrf_token(stack: LiveStack) -> None:
    with httpx.Client(base_url=stack.base_url) as browser:
        email = unique_email()
        register(browser, email)
        # The client keeps the access_token cookie, as a browser does.
        tokens = browser.post("/auth/login", json={"email": email, "password": PASSWORD}).json()

        without = browser.put("/user/profile", json={"full_name": "No Token"})
        forged = browser.put("/user/profile", json={"full_name": "Forged"}, headers={"X-CSRF-Token": "forged"})
        with_token = browser.put(
            "/user/profile", json={"full_name": "With Token"}, headers={"X-CSRF-Token": tokens["csrf_token"]}
        )
        reading = browser.get("/user/profile")

    assert without.status_code == forged.status_code == 403
    assert without.json()["code"] == "CSRF_ERROR"
    assert with_token.status_code == 200 and with_token.json()["full_name"] == "With Token"
    assert reading.status_code == 200


def test_bearer_calls_need_no_csrf_token(http: httpx.Client) -> None:
    account = new_account(http)

    response = http.put("/user/profile", json={"name": "Bearer"}, headers=account.bearer)

    assert response.status_code == 200 and response.json()["name"] == "Bearer"


def test_logout_revokes_access_and_refresh_tokens_at_once(http: httpx.Client) -> None:
    account = new_account(http)

    out = http.post("/auth/logout", headers=account.bearer)
    replay = http.get("/auth/me", headers=account.bearer)
    refresh = http.post("/auth/refresh", json={"refresh_token": account.tokens["refresh_token"]})

    assert out.status_code == 200 and out.json()["message"]
    assert "access_token=" in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert replay.status_code == 401 and refresh.status_code == 401


def test_refresh_rotates_and_reuse_ends_the_session(http: httpx.Client) -> None:
    account = new_account(http)
    first = account.tokens["refresh_token"]

    rotated = http.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    fresh = rotated.json()
    assert fresh["refresh_token"] != first and fresh["session_id"] == account.tokens["session_id"]
    assert http.get("/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200

    reuse = http.post("/api/auth/refresh", json={"refresh_token": first})
    after = http.get("/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    next_refresh = http.post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]})

    assert reuse.status_code == 401 and "already used" in reuse.json()["detail"]
    assert after.status_code == 401 and next_refresh.status_code == 401


def test_refresh_with_the_current_access_token_in_the_header(http: httpx.Client) -> None:
    account = new_account(http)

    response = http.post("/auth/refresh", headers=account.bearer)

    assert response.status_code == 200 and response.json()["access_token"] != account.tokens["access_token"]


def test_refresh_without_any_token_is_401(http: httpx.Client) -> None:
    assert http.post("/auth/refresh", json={}).status_code == 401
    assert http.post("/auth/refresh", json={"refresh_token": "garbage"}).status_code == 401


def test_an_access_token_is_not_a_refresh_token(http: httpx.Client) -> None:
    account = new_account(http)

    as_refresh = http.post("/auth/refresh", json={"refresh_token": account.tokens["access_token"]})
    as_access = http.get("/auth/me", headers={"Authorization": f"Bearer {account.tokens['refresh_token']}"})

    assert as_refresh.status_code == as_access.status_code == 401


def test_login_and_me_over_grpc(channel: grpc.Channel) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    email = unique_email()
    stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))

    tokens = stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
    me = stub.GetMe(auth_pb2.GetMeRequest(), metadata=[("authorization", f"Bearer {tokens.access_token}")])

    assert me.email == email and tokens.user.id == me.id
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetMe(auth_pb2.GetMeRequest())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
