"""Small helpers for identity tests: unique accounts, sign-in, auth headers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

PASSWORD = "correct-horse-42"


@dataclass
class Account:
    email: str
    password: str
    tokens: dict[str, Any]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    @property
    def user_id(self) -> int:
        return int(self.tokens["user"]["id"])


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register(http: httpx.Client, email: str | None = None, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    response = http.post("/auth/register", json={"email": email or unique_email(), "password": password, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(http: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = http.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    http.cookies.clear()  # tests pass credentials explicitly; cookie flows keep their own client
    return dict(response.json())


def new_account(http: httpx.Client, **extra: Any) -> Account:
    email = unique_email()
    register(http, email, **extra)
    return Account(email=email, password=PASSWORD, tokens=login(http, email))


def admin(http: httpx.Client) -> Account:
    return Account(email=ADMIN_EMAIL, password=ADMIN_PASSWORD, tokens=login(http, ADMIN_EMAIL, ADMIN_PASSWORD))
