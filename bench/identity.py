"""Sign-in, "who am I" and a conversation list through the Relais bridge versus a plain
FastAPI + SQLAlchemy app.

    .venv/bin/python -m bench identity            # GET /auth/me and GET /api/chats: 1000 requests
                                                  # after 100 warm-up, POST /auth/login: 50 after 5;
                                                  # concurrency 1, 16
    .venv/bin/python -m bench identity --quick    # smoke run

Three routes, each served two ways, all measured in one run:

    POST /auth/login   JSON {"email", "password"} -> tokens + user (+ access_token cookie).
                       Dominated by one Argon2id verification (argon2-cffi defaults) on both sides.
    GET /auth/me       Authorization: Bearer <access token> -> the user. Relais: auth interceptor
                       (JWT, session row, user, roles, permissions) then AuthService.GetMe; plain:
                       the same checks and loads in a FastAPI dependency (bench.identity_plain).
    GET /api/chats     Authorization: Bearer -> the first page (20) of the account's 30
                       conversations with their total. Relais: ChatService.ListChats (a count and a
                       page with each chat's agent joined); plain: the same two statements.

The servers run in child processes (`python -m bench.identity serve relais|plain DATA_DIR`), the
load generator in this one, as in bench.health:

    relais child   grpc.aio RelaisServer + the real bridge under uvicorn, one asyncio loop, with the
                   account bench@example.com created at first start (RELAIS_ADMIN_EMAIL/PASSWORD)
                   and rate limits lifted so that no request is refused
    plain child    bench.identity_plain: FastAPI + SQLAlchemy async (aiosqlite) + argon2-cffi + PyJWT,
                   the same account created at start-up
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import common
from bench.common import Call, Result, ServerProcess

if TYPE_CHECKING:
    import httpx

NAME = "identity"
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"
CREDENTIALS = {"email": EMAIL, "password": PASSWORD}
TARGETS = ("plain", "bridge")
LABELS = {
    "plain": "plain FastAPI + SQLAlchemy (uvicorn)",
    "bridge": "Relais bridge (uvicorn -> gRPC)",
}
LOGIN = "POST /auth/login"
ME = "GET /auth/me"
CHATS = "GET /api/chats"
# The account's conversations: a full first page (20) and a total beyond it.
CHAT_COUNT = 30
PAGE = 20
# Login costs one Argon2id verification (~0.2 s of CPU on a 2-core machine) and both servers verify
# on their event loop (~5 logins/s at any concurrency): it gets 1/LOGIN_SHARE of the requests and
# warm-up that GET /auth/me gets, which keeps the default run under two minutes.
LOGIN_SHARE = 20


# ── Server side: runs in the child processes ────────────────────────────────────────────────


async def serve_relais(data_dir: Path) -> common.Served:
    return await common.start_relais(data_dir, admin_email=EMAIL, admin_password=PASSWORD)


async def serve_plain(data_dir: Path) -> common.Served:
    from bench.identity_plain import create_app

    return common.Served(app=create_app(data_dir, email=EMAIL, password=PASSWORD, chats=CHAT_COUNT))


SERVERS = {"relais": serve_relais, "plain": serve_plain}


def serve_main(argv: list[str]) -> None:
    """Child entry point: `python -m bench.identity serve relais|plain DATA_DIR`."""
    common.serve_main(argv, "bench.identity", SERVERS)


# ── Client side: this process ───────────────────────────────────────────────────────────────


def _check_user(target: str, user: Any) -> None:
    """The signed-in account, as an admin, in the same shape on both sides."""
    if not isinstance(user, dict) or user.get("email") != EMAIL:
        raise RuntimeError(f"{target}: not the benchmark account: {user!r}")
    missing = {"id", "username", "is_active", "is_admin", "roles", "permissions", "created_at"} - set(user)
    if missing:
        raise RuntimeError(f"{target}: user lacks {sorted(missing)}: {user!r}")
    if "admin" not in user["roles"] or "*" not in user["permissions"] or not user["is_admin"]:
        raise RuntimeError(f"{target}: the benchmark account is not an admin: {user!r}")


async def _login(target: str, client: httpx.AsyncClient) -> str:
    """Sign in, check the whole answer, return the access token."""
    response = await client.post("/auth/login", json=CREDENTIALS)
    if response.status_code != 200:
        raise RuntimeError(f"{target}: POST /auth/login: {response.status_code} {response.text[:300]}")
    body = response.json()
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token or body.get("token_type") != "bearer":
        raise RuntimeError(f"{target}: login answer without a bearer access_token: {body!r}")
    _check_user(target, body.get("user"))
    if not any(value.startswith("access_token=") for value in response.headers.get_list("set-cookie")):
        raise RuntimeError(f"{target}: login answer sets no access_token cookie")
    return token


@contextlib.asynccontextmanager
async def login_caller(target: str, base_url: str, concurrency: int) -> AsyncIterator[Call]:
    """POST /auth/login, one connection per worker. The clients keep no cookies, so no request
    carries the access_token cookie an earlier login set (Relais would authenticate it)."""
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:
        await _login(target, clients[0])

        async def call(worker: int) -> None:
            response = await clients[worker].post("/auth/login", json=CREDENTIALS)
            if response.status_code != 200:
                raise RuntimeError(f"{target}: POST /auth/login: {response.status_code} {response.text[:200]}")

        yield call


def _check_page(target: str, page: Any) -> None:
    """The first page of the account's conversations, newest first, in the same shape on both sides."""
    chats = page.get("chats") if isinstance(page, dict) else None
    if not isinstance(chats, list) or len(chats) != PAGE or page.get("total") != CHAT_COUNT:
        raise RuntimeError(f"{target}: not a page of {PAGE} of {CHAT_COUNT} conversations: {str(page)[:300]}")
    missing = {"id", "title", "user_id", "agent_id", "message_count", "created_at", "updated_at"} - set(chats[0])
    if missing:
        raise RuntimeError(f"{target}: a conversation lacks {sorted(missing)}: {chats[0]!r}")
    if chats[0]["title"] != f"Conversation {CHAT_COUNT}":
        raise RuntimeError(f"{target}: the newest conversation does not come first: {chats[0]!r}")


async def _seed_chats(target: str, client: httpx.AsyncClient, token: str) -> None:
    """The account's conversations, made once through the route users make them with (the plain
    app creates its own at start-up)."""
    headers = {"Authorization": f"Bearer {token}"}
    listed = await client.get("/api/chats", headers=headers)
    if listed.status_code != 200:
        raise RuntimeError(f"{target}: GET /api/chats: {listed.status_code} {listed.text[:300]}")
    for number in range(listed.json().get("total", 0) + 1, CHAT_COUNT + 1):
        made = await client.post("/api/chats", json={"title": f"Conversation {number}"}, headers=headers)
        if made.status_code != 201:
            raise RuntimeError(f"{target}: POST /api/chats: {made.status_code} {made.text[:300]}")


@contextlib.asynccontextmanager
async def authenticated_get(target: str, base_url: str, concurrency: int, path: str) -> AsyncIterator[Call]:
    """GET `path`, one connection per worker, each worker with the token of its own session."""
    check = {ME: _check_user, CHATS: _check_page}[f"GET {path}"]
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:
        tokens = await asyncio.gather(*(_login(target, client) for client in clients))
        if path == "/api/chats" and target != "plain":
            await _seed_chats(target, clients[0], tokens[0])
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        response = await clients[0].get(path, headers=headers[0])
        if response.status_code != 200:
            raise RuntimeError(f"{target}: GET {path}: {response.status_code} {response.text[:300]}")
        check(target, response.json())

        async def call(worker: int) -> None:
            response = await clients[worker].get(path, headers=headers[worker])
            if response.status_code != 200:
                raise RuntimeError(f"{target}: GET {path}: {response.status_code} {response.text[:200]}")

        yield call


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    requests: int
    warmup: int


def routes(args: argparse.Namespace) -> list[Route]:
    return [
        Route(LOGIN, max(1, args.requests // LOGIN_SHARE), args.warmup // LOGIN_SHARE),
        Route(ME, args.requests, args.warmup),
        Route(CHATS, args.requests, args.warmup),
    ]


async def run_all(args: argparse.Namespace, servers: dict[str, ServerProcess]) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {}
    for route in routes(args):
        print(f"  {route.name}: {route.requests} requests after {route.warmup} warm-up", file=sys.stderr, flush=True)
        results[route.name] = []
        for concurrency in args.concurrency:
            for target in TARGETS:
                server = servers["plain" if target == "plain" else "relais"]
                caller = (
                    login_caller(target, server.base_url, concurrency)
                    if route.name == LOGIN
                    else authenticated_get(target, server.base_url, concurrency, route.name.removeprefix("GET "))
                )
                async with caller as call:
                    result = await common.measure_call(
                        call,
                        target=target,
                        label=LABELS[target],
                        server=server,
                        concurrency=concurrency,
                        requests=route.requests,
                        warmup=route.warmup,
                    )
                common.progress(target, result)
                results[route.name].append(result)
    return results


def run(args: argparse.Namespace) -> int:
    """Entry point for `python -m bench identity`."""
    args = common.resolve_defaults(args, requests=(1000, 100), warmup=(100, 10), concurrency=[1, 16])
    output = common.output_path(args, NAME)
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# identity: POST /auth/login, GET /auth/me and GET /api/chats, concurrency "
        f"{', '.join(map(str, args.concurrency))}{quick_note}",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="relais-bench-") as scratch,
        common.server_processes("bench.identity", Path(scratch), ("relais", "plain")) as servers,
    ):
        results = asyncio.run(run_all(args, servers))
    plan = {route.name: route for route in routes(args)}
    ratio_rows = {name: common.ratios(route_results) for name, route_results in results.items()}
    print()
    print(f"## Identity routes: {os.cpu_count()} CPUs, Python {platform.python_version()}, servers in child processes")
    for name, route_results in results.items():
        print()
        print(f"### {name}: {plan[name].requests} requests/scenario after {plan[name].warmup} warm-up")
        print()
        print(common.markdown(route_results, ratio_rows[name]))
    document = {
        "benchmark": NAME,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "setup": {
            "routes": {name: {"requests": route.requests, "warmup": route.warmup} for name, route in plan.items()},
            "concurrency": args.concurrency,
            "servers": "child processes (relais: gRPC server + bridge on one asyncio loop; "
            "plain: FastAPI + SQLAlchemy, bench.identity_plain), load generator in the parent process",
            "password_hasher": "argon2.PasswordHasher() defaults (Argon2id) on both sides",
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "versions": common.versions((*common.BASE_PACKAGES, "argon2-cffi", "pyjwt", "pydantic")),
            "wall_seconds": round(time.monotonic() - started, 1),
        },
        "results": [
            {"route": name, **asdict(result)} for name, route_results in results.items() for result in route_results
        ],
        "ratios_vs_plain": [{"route": name, **row} for name, rows in ratio_rows.items() for row in rows],
    }
    common.write_json(output, document)
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    serve_main(sys.argv[1:])
