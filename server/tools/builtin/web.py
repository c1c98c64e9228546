"""web_fetch: read a public web page, for administrators, off unless enabled.

The SSRF guard: only http and https; every address the host resolves to must be public
(not private, loopback, link-local, carrier-grade NAT, multicast, reserved or unspecified,
IPv4-mapped forms included) unless the operator lets a network in
(`web_fetch_allow_networks`); the connection goes to the address that was checked (the URL
is rewritten to it, with the Host header and TLS server name kept), so a second DNS answer
cannot point elsewhere; each redirect (at most 5) is checked the same way. The body is cut at
`web_fetch_max_bytes` and the whole fetch at `web_fetch_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any

import httpx

from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext

MAX_REDIRECTS = 5
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ToolError):
    """The URL leads somewhere web_fetch may not go."""


def forbidden(address: Address, allowed: Sequence[Network]) -> str | None:
    """Why `address` may not be reached, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return None
    for label, flag in (
        ("loopback", address.is_loopback),
        ("private", address.is_private),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("unspecified", address.is_unspecified),
    ):
        if flag:
            return label
    return None if address.is_global else "not public"


async def checked_address(host: str, port: int, allowed: Sequence[Network]) -> Address:
    """The address to connect to: every address `host` resolves to must be allowed."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ToolError(f"Cannot resolve {host!r}: {error.strerror}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise ToolError(f"{host!r} has no address")
    for address in addresses:
        if reason := forbidden(address, allowed):
            raise Refused(f"Refused: {host} resolves to {address}, a {reason} address")
    return addresses[0]


class _Text(HTMLParser):
    """The visible text of an HTML page."""

    SKIP = frozenset({"script", "style", "noscript", "template", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skipping += tag in self.SKIP

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in self.SKIP and self._skipping > 0

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.parts.append(" ".join(data.split()))


def page_text(body: str, content_type: str) -> str:
    if "html" not in content_type:
        return body
    parser = _Text()
    parser.feed(body)
    return "\n".join(parser.parts)


class WebFetcher:
    def __init__(self, *, max_bytes: int, timeout: float, allow_networks: Sequence[str]) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._allowed: list[Network] = [ipaddress.ip_network(network, strict=False) for network in allow_networks]

    async def fetch(self, url: str) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(url)
        except TimeoutError:
            raise ToolError(f"Fetching {url} took longer than {self._timeout:g} s") from None

    async def _follow(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target = self._target(url)
                address = await checked_address(target.host, target.port or _default_port(target), self._allowed)
                pinned = target.copy_with(host=str(address))
                extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
                request = client.build_request(
                    "GET",
                    pinned,
                    headers={"Host": target.netloc.decode("ascii"), "User-Agent": "Relais-web_fetch/1"},
                    extensions=extensions,
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as error:
                    raise ToolError(f"Cannot fetch {url}: {error}") from None
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = str(target.join(response.headers["location"]))
                        continue
                    return await self._read(str(target), response)
                finally:
                    await response.aclose()
        raise ToolError(f"More than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _target(url: str) -> httpx.URL:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise ToolError(f"Not a URL: {error}") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise Refused(f"Refused: only http and https URLs may be fetched, not {url!r}")
        if target.userinfo:
            raise Refused("Refused: URLs with credentials are not fetched")
        return target

    async def _read(self, url: str, response: httpx.Response) -> dict[str, Any]:
        body, truncated = bytearray(), False
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > self._max_bytes:
                del body[self._max_bytes :]
                truncated = True
                break
        content_type = response.headers.get("content-type", "")
        text = bytes(body).decode(response.encoding or "utf-8", errors="replace")
        return {
            "url": url,
            "status": response.status_code,
            "content_type": content_type,
            "truncated": truncated,
            "bytes": len(body),
            "text": page_text(text, content_type),
        }


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def web_tools(fetcher: WebFetcher) -> list[BuiltinTool]:
    async def web_fetch(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
        return await fetcher.fetch(arguments["url"].strip())

    return [
        BuiltinTool(
            name="web_fetch",
            description="Fetch a public web page (http/https) and return its text. Administrators only.",
            parameters=schema({"url": {"type": "string", "minLength": 8, "maxLength": 2000}}, required=["url"]),
            category="web",
            run=web_fetch,
            admin_only=True,
        )
    ]
