"""Sign-in and "who am I" through the Relais bridge versus a plain FastAPI + SQLAlchemy app.

    .venv/bin/python -m bench identity            # GET /auth/me: 1000 requests after 100 warm-up,
                                                  # POST /auth/login: 50 after 5; concurrency 1, 8
    .venv/bin/python -m bench identity --quick    # smoke run

Two routes, each served two ways, all measured in one run:

    POST /auth/login   JSON {"email", "password"} -> tokens + user (+ access_token cookie).
                       Dominated by one Argon2id verification (argon2-cffi defaults) on both sides.
    GET /auth/me       Authorization: Bearer <access token> -> the user. Relais: auth interceptor
                       (JWT, session row, user, roles, permissions) then AuthService.GetMe; plain:
                       the same checks and loads in a FastAPI dependency (bench.identity_plain).

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
# Login costs one Argon2id verification (~0.2 s of CPU on a 2-core machine) and both servers verify
# on their event loop (~5 logins/s at any concurrency): it gets 1/LOGIN_SHARE of the requests and
# warm-up that GET /auth/me gets, which keeps the default run under two minutes.
LOGIN_SHARE = 20


# ── Server side: runs in the child processes ────────────────────────────────────────────────


async def serve_relais(data_dir: Path) -> common.Served:
    return await common.start_relais(data_dir, admin_email=EMAIL, admin_password=PASSWORD)


async def serve_plain(data_dir: Path) -> common.Served:
    from bench.identity_plain import create_app

    return common.Served(app=create_app(data_dir, email=EMAIL, password=PASSWORD))


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


@contextlib.asynccontextmanager
async def me_caller(target: str, base_url: str, concurrency: int) -> AsyncIterator[Call]:
    """GET /auth/me, one connection per worker, each worker with the token of its own session."""
    async with common.http_clients(base_url, concurrency, cookies=False) as clients:
        tokens = await asyncio.gather(*(_login(target, client) for client in clients))
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        response = await clients[0].get("/auth/me", headers=headers[0])
        if response.status_code != 200:
            raise RuntimeError(f"{target}: GET /auth/me: {response.status_code} {response.text[:300]}")
        _check_user(target, response.json())

        async def call(worker: int) -> None:
            response = await clients[worker].get("/auth/me", headers=headers[worker])
            if response.status_code != 200:
                raise RuntimeError(f"{target}: GET /auth/me: {response.status_code} {response.text[:200]}")

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
    ]


async def run_all(args: argparse.Namespace, servers: dict[str, ServerProcess]) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {}
    for route in routes(args):
        print(f"  {route.name}: {route.requests} requests after {route.warmup} warm-up", file=sys.stderr, flush=True)
        results[route.name] = []
        for concurrency in args.concurrency:
            for target in TARGETS:
                server = servers["plain" if target == "plain" else "relais"]
                make = login_caller if route.name == LOGIN else me_caller
                async with make(target, server.base_url, concurrency) as call:
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
    args = common.resolve_defaults(args, requests=(1000, 100), warmup=(100, 10), concurrency=[1, 8])
    output = common.output_path(args, NAME)
    quick_note = " (quick: a smoke run, not a measurement)" if args.quick else ""
    print(
        f"# identity: POST /auth/login and GET /auth/me, concurrency "
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
