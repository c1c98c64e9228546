"""The seeds' own client examples, run against a live server. Only the base URL and the
credentials differ from the documents (Relais has no default account to sign in with)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import requests

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.identity.helpers import PASSWORD, register, unique_email
from tests.support.live import LiveStack

ROOT = Path(__file__).resolve().parents[2]


def test_xcore_requests_example(stack: LiveStack) -> None:
    # seeds/003 "Exemple Python"
    response = requests.post(
        f"{stack.base_url}/auth/login", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    token = response.json()["access_token"]

    headers = {"Authorization": f"Bearer {token}"}
    users = requests.get(f"{stack.base_url}/admin/users", headers=headers, timeout=30).json()

    assert users["total"] >= 1 and {"items", "skip", "limit", "has_more"} <= set(users)


def test_orchestrator_httpx_example(stack: LiveStack) -> None:
    # seeds/001 "Exemples / Python" (the chat call belongs to the chat routes)
    client = httpx.Client(base_url=stack.base_url)
    response = client.post("/api/auth/login", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = response.json()["access_token"]

    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    client.close()

    assert me.json()["email"] == ADMIN_EMAIL


class FoyerGPTAPI:
    """seeds/004 "Python", as written."""

    def __init__(self, base_url: str = "http://localhost:8061/api") -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.token = None

    def login(self, email: str, password: str) -> Any:
        response = self.session.post(f"{self.base_url}/auth/login", json={"email": email, "password": password})
        response.raise_for_status()
        data = response.json()
        self.token = data["access_token"]
        self.session.headers.update({"Authorization": f"Bearer {self.token}"})
        return data

    def create_agent(self, name: str, system_prompt: str, **kwargs: Any) -> Any:
        response = self.session.post(
            f"{self.base_url}/agents", json={"name": name, "system_prompt": system_prompt, **kwargs}
        )
        response.raise_for_status()
        return response.json()

    def send_message(self, chat_id: int, content: str) -> Any:
        response = self.session.post(f"{self.base_url}/messages", json={"chat_id": chat_id, "content": content})
        response.raise_for_status()
        return response.json()


def test_foyergpt_python_client_class(stack: LiveStack, http: httpx.Client) -> None:
    email = unique_email()
    register(http, email, trigramme="")
    api = FoyerGPTAPI(base_url=f"{stack.base_url}/api")

    data = api.login(email, PASSWORD)
    me = api.session.get(f"{api.base_url}/auth/me").json()

    assert data["token_type"] == "bearer" and data["user"]["email"] == email and me["email"] == email


def test_local_assistant_curl_example_with_cookie_jar_and_csrf(stack: LiveStack, tmp_path: Path) -> None:
    # seeds/000: login with -c cookies.txt, then a CSRF-protected POST with -b cookies.txt.
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test"
    jar = tmp_path / "cookies.txt"
    body = json.dumps({"user": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    login = subprocess.run(
        [
            curl,
            "-s",
            "-X",
            "POST",
            f"{stack.base_url}/auth/login",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            "-c",
            str(jar),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    csrf = json.loads(login.stdout)["csrf_token"]

    def post(*extra: str) -> int:
        result = subprocess.run(
            [
                curl,
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                f"{stack.base_url}/sessions/{json.loads(login.stdout)['session_id']}/terminate",
                "-b",
                str(jar),
                *extra,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(result.stdout)

    assert "access_token" in jar.read_text()
    assert post() == 403  # no X-CSRF-Token
    assert post("-H", f"X-CSRF-Token: {csrf}") == 200


def test_foyergpt_axios_example(stack: LiveStack, http: httpx.Client) -> None:
    node = shutil.which("node")
    assert node, "node is needed for this test"
    email = unique_email()
    register(http, email)

    result = subprocess.run(
        [node, str(ROOT / "tests" / "seeds" / "foyergpt_login.mjs"), stack.base_url, email, PASSWORD],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"token_type": "bearer", "me": email}
