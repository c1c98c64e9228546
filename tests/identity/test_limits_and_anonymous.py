"""Rate limits (in process, and shared through Redis by two processes) and anonymous access."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from server.ports import unused_port
from tests.conftest import stack_settings
from tests.identity.helpers import PASSWORD, login, register, unique_email
from tests.support import services
from tests.support.live import LiveStack
from tests.test_cli import relais, wait_http


def start(tmp_path: Path, **settings: object) -> LiveStack:
    return services.start_stack_with_test_service(
        stack_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", **settings)
    )


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[httpx.Client]:
    live = start(tmp_path, rate_limit_anonymous="3/minute", rate_limit_user="2/minute", rate_limit_login="5/300s")
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        yield client
    live.stop()


def test_anonymous_calls_are_limited_per_address_with_headers(limited: httpx.Client) -> None:
    answers = [limited.get("/v1/items/1") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    assert int(answers[0].headers["x-ratelimit-reset"]) > 1_700_000_000
    assert answers[3].json()["code"] == "RATE_LIMIT" and int(answers[3].headers["retry-after"]) >= 1


def test_health_probes_are_not_rate_limited(limited: httpx.Client) -> None:
    answers = [limited.get("/health") for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert "x-ratelimit-limit" not in answers[0].headers


def test_signed_in_callers_have_their_own_budget_by_role(tmp_path: Path) -> None:
    live = start(
        tmp_path,
        rate_limit_user="2/minute",
        rate_limit_admin="5/minute",
        admin_email="boss@example.com",
        admin_password=PASSWORD,
    )
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            email = unique_email()
            register(http, email)
            user = {"Authorization": f"Bearer {login(http, email)['access_token']}"}
            boss = {"Authorization": f"Bearer {login(http, 'boss@example.com')['access_token']}"}
            user_codes = [http.get("/auth/me", headers=user).status_code for _ in range(3)]
            boss_codes = [http.get("/auth/me", headers=boss).status_code for _ in range(3)]
            boss_limit = http.get("/auth/me", headers=boss).headers["x-ratelimit-limit"]
    finally:
        live.stop()

    assert user_codes == [200, 200, 429]
    assert boss_codes == [200, 200, 200] and boss_limit == "5"


def test_successful_sign_ins_do_not_use_up_the_login_limit(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_login="2/300s")
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            email = unique_email()
            register(http, email)
            codes = [
                http.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code for _ in range(4)
            ]
    finally:
        live.stop()

    assert codes == [200] * 4


def test_failed_login_attempts_are_limited_per_account_and_address(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_login="5/300s")
    try:
        with httpx.Client(base_url=live.base_url, timeout=30) as http:
            target, bystander = unique_email(), unique_email()
            register(http, target)
            register(http, bystander)
            wrong = [
                http.post("/auth/login", json={"email": target, "password": "wrong-pass-1"}).status_code
                for _ in range(5)
            ]
            right_but_late = http.post("/auth/login", json={"email": target, "password": PASSWORD})
            other_account = http.post("/auth/login", json={"email": bystander, "password": PASSWORD})
    finally:
        live.stop()

    assert wrong == [401] * 5
    assert right_but_late.status_code == 429 and right_but_late.json()["code"] == "RATE_LIMIT"
    assert other_account.status_code == 200


def test_two_processes_share_one_budget_through_redis(tmp_path: Path) -> None:
    prefix = f"relais:test:{uuid.uuid4().hex}:"
    env = {
        "RELAIS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RELAIS_RATE_LIMIT_ANONYMOUS": "4/minute",
        "RELAIS_RATE_LIMIT_PREFIX": prefix,
        # Two processes starting at once on a busy machine: no Milvus Lite to wait for.
        "RELAIS_RETRIEVAL_PRELOAD": "false",
    }
    ports = [(unused_port(), unused_port()) for _ in range(2)]
    with (
        relais(
            "serve",
            "--http-port",
            str(ports[0][0]),
            "--grpc-port",
            str(ports[0][1]),
            "--data-dir",
            str(tmp_path / "a"),
            env=env,
        ) as first,
        relais(
            "serve",
            "--http-port",
            str(ports[1][0]),
            "--grpc-port",
            str(ports[1][1]),
            "--data-dir",
            str(tmp_path / "b"),
            env=env,
        ) as second,
    ):
        wait_http(f"http://127.0.0.1:{ports[0][0]}/openapi.json", first)
        wait_http(f"http://127.0.0.1:{ports[1][0]}/openapi.json", second)
        # A public, metered operation (without a token, refresh answers 401 after being counted).
        codes = [
            httpx.post(f"http://127.0.0.1:{ports[i % 2][0]}/auth/refresh", json={}, timeout=30).status_code
            for i in range(6)
        ]

    assert codes == [401, 401, 401, 401, 429, 429]


def test_anonymous_access_is_off_by_default(tmp_path: Path) -> None:
    live = start(tmp_path)
    try:
        response = httpx.get(f"{live.base_url}/v1/ping", timeout=30)
    finally:
        live.stop()

    assert response.status_code == 401


def test_anonymous_access_reaches_only_the_routes_marked_for_it(tmp_path: Path) -> None:
    live = start(tmp_path, allow_anonymous=True)
    try:
        marked = httpx.get(f"{live.base_url}/v1/ping", timeout=30)
        unmarked = httpx.get(f"{live.base_url}/auth/me", timeout=30)
    finally:
        live.stop()

    assert marked.status_code == 200 and marked.json()["subject"] == "anonymous"
    assert unmarked.status_code == 401


def test_tokens_passwords_and_keys_never_reach_the_logs(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    email = unique_email()
    with caplog.at_level(logging.DEBUG):
        register(http, email)
        tokens = login(http, email)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        key = http.post("/api/keys", headers=bearer, json={"name": "log-test"}).json()["key"]
        http.get("/auth/me", headers={"X-API-Key": key})
        http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        http.post("/auth/login", json={"email": email, "password": "Wrong-password-9"})
        http.put("/user/password", headers=bearer, json={"current_password": PASSWORD, "new_password": "next-pass-77"})

    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "signed in user_id=" in text
    for secret in (
        PASSWORD,
        "Wrong-password-9",
        "next-pass-77",
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["csrf_token"],
        key,
    ):
        assert secret not in text
    assert os.environ.get("RELAIS_SECRET_KEY") is None or os.environ["RELAIS_SECRET_KEY"] not in text


def test_secure_cookie_when_the_operator_asks_for_it(tmp_path: Path) -> None:
    live = start(tmp_path, cookie_secure=True, admin_email="secure@example.com", admin_password=PASSWORD)
    try:
        response = httpx.post(
            f"{live.base_url}/auth/login", json={"email": "secure@example.com", "password": PASSWORD}, timeout=30
        )
    finally:
        live.stop()

    assert "; Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]


def test_a_logout_reaches_the_other_processes_caches_through_redis(tmp_path: Path, postgres_schema_url: str) -> None:
    # Both processes answer authenticated calls from their principal caches; a logout on one
    # must still be refused at once by the other.
    env = {
        "RELAIS_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RELAIS_DATABASE_URL": postgres_schema_url,
        "RELAIS_PRINCIPAL_CACHE_TTL": "300",
        "RELAIS_LLM_PRELOAD": "false",
        "RELAIS_RETRIEVAL_PRELOAD": "false",
    }
    ports = [(unused_port(), unused_port()) for _ in range(2)]
    urls = [f"http://127.0.0.1:{http_port}" for http_port, _ in ports]

    def serve(index: int, data: str) -> object:
        http_port, grpc_port = ports[index]
        return relais(
            "serve", "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--data-dir", data, env=env
        )

    with serve(0, str(tmp_path / "a")) as first:  # type: ignore[attr-defined]
        wait_http(f"{urls[0]}/openapi.json", first)
        with serve(1, str(tmp_path / "b")) as second:  # type: ignore[attr-defined]
            wait_http(f"{urls[1]}/openapi.json", second)
            with httpx.Client(timeout=30) as http:
                email = unique_email("cache")
                assert http.post(f"{urls[0]}/auth/register", json={"email": email, "password": PASSWORD}).is_success
                token = http.post(f"{urls[0]}/auth/login", json={"email": email, "password": PASSWORD}).json()
                bearer = {"authorization": f"Bearer {token['access_token']}"}
                assert http.get(f"{urls[1]}/auth/me", headers=bearer).status_code == 200  # cached on B now

                assert http.post(f"{urls[0]}/auth/logout", headers=bearer).status_code == 200

                deadline = 50
                while http.get(f"{urls[1]}/auth/me", headers=bearer).status_code == 200 and deadline:
                    deadline -= 1  # the announcement travels through Redis: milliseconds
                assert http.get(f"{urls[1]}/auth/me", headers=bearer).status_code == 401
                assert deadline >= 45


def test_concurrent_wrong_passwords_cannot_slip_under_the_login_limit(tmp_path: Path) -> None:
    live = start(tmp_path, rate_limit_login="5/300s")
    try:
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            email = unique_email()
            register(http, email)

            def attempt(index: int) -> int:
                body = {"email": email, "password": f"wrong-pass-{index}"}
                return http.post("/auth/login", json=body).status_code

            with ThreadPoolExecutor(max_workers=20) as pool:
                codes = sorted(pool.map(attempt, range(20)))
    finally:
        live.stop()

    assert codes == [401] * 5 + [429] * 15
