"""web_fetch's SSRF guard: private, loopback, link-local and mapped addresses refused, directly
or through a redirect; the size cap; and a page fetched from the one network the operator let in
(127.0.0.2, standing for an intranet)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.identity.helpers import Account
from tests.tools.support import result


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = int(self.server.server_address[1])  # type: ignore[index]
        if self.path == "/page":
            body = b"<html><head><style>p{}</style><script>alert(1)</script></head>"
            body += b"<body><h1>Hello</h1><p>World</p></body></html>"
            self._send(200, body, "text/html; charset=utf-8")
        elif self.path == "/big":
            self._send(200, b"x" * 5000, "text/plain")
        elif self.path == "/to-loopback":
            self._redirect(f"http://127.0.0.1:{port}/page")
        elif self.path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif self.path == "/to-page":
            self._redirect("/page")
        else:
            self._send(404, b"missing", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def intranet() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.2", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(http: httpx.Client, root: Account, url: str) -> dict[str, Any]:
    return result(http, root, "web_fetch", url=url)


def test_page_of_an_allowed_network_is_fetched_as_text(http: httpx.Client, root: Account, intranet: str) -> None:
    body = fetch(http, root, f"{intranet}/page")
    assert body["is_error"] is False
    page = body["structured_content"]
    assert isinstance(page, dict)
    assert page["status"] == 200 and page["text"] == "Hello\nWorld"
    followed = fetch(http, root, f"{intranet}/to-page")["structured_content"]
    assert isinstance(followed, dict) and followed["text"] == "Hello\nWorld"


def test_body_is_cut_at_the_size_cap(http: httpx.Client, root: Account, intranet: str) -> None:
    page = fetch(http, root, f"{intranet}/big")["structured_content"]
    assert isinstance(page, dict)
    assert page["truncated"] is True and page["bytes"] == 2000


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/health",
        "http://10.0.0.1/",
        "http://192.168.1.1/admin",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0.0.0.0/",
        "http://100.64.1.1/",
        "http://[fe80::1]/",
    ],
)
def test_private_addresses_are_refused(http: httpx.Client, root: Account, url: str) -> None:
    body = fetch(http, root, url)
    assert body["is_error"] is True
    assert body["content"].startswith("Refused"), body["content"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "http://user:pw@example.com/"])
def test_other_schemes_and_credentials_are_refused(http: httpx.Client, root: Account, url: str) -> None:
    body = fetch(http, root, url)
    assert body["is_error"] is True and body["content"].startswith("Refused")


@pytest.mark.parametrize("path", ["/to-loopback", "/to-metadata"])
def test_redirects_to_private_addresses_are_refused(
    http: httpx.Client, root: Account, intranet: str, path: str
) -> None:
    body = fetch(http, root, f"{intranet}{path}")
    assert body["is_error"] is True and body["content"].startswith("Refused")
