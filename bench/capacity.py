"""`python -m bench capacity`: the per-request costs docs/scaling.md's capacity model needs and the
other benchmarks do not measure.

1. Database statements per route: a Relais stack in this process (on the local PostgreSQL, in a
   schema of its own; SQLite when PostgreSQL is not reachable), the Triton stand-in as its model,
   every statement counted at the engine (`before_cursor_execute`) while each route is called
   `--requests` times (20 by default, 5 with `--quick`) after a warm-up. A stored streamed reply is
   counted whole (user message, history, assistant message, its rewrites while it grows, completion).
2. The stream journal on Redis: concurrent writers append single-entry batches through
   `RedisJournal.append`, as a Recording does when tokens come slower than Redis answers, against
   the same journal renewing its keys with every entry (the baseline, as it was before); a Redis
   server of the benchmark's own, whose CPU (INFO cpu) per entry says how many entries one Redis
   core sustains, and the writer's CPU per entry (what a replica spends on it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import sqlalchemy

from bench.common import output_path, write_json
from server.config import Settings
from server.history.repository import Entry, RedisJournal
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

POSTGRES_URL = os.environ.get("RELAIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = ("capacity@relais.bench", "capacity-pass-1234")
PASSWORD = "capacity-user-pass-1"
REPLY_TOKENS = 40  # one every 25 ms: a one-second reply, long enough for a rewrite while it grows


def _database(directory: Path) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL schema (and how to drop it), or a SQLite file."""
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2) as connection:
            schema = f"relais_bench_{uuid.uuid4().hex[:10]}"
            connection.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError:
        return f"sqlite:///{directory / 'relais.db'}", lambda: None

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}_dbos" CASCADE')

    return f"{POSTGRES_URL}?options={urllib.parse.quote(f'-csearch_path={schema}')}", drop


# What a replica runs on its own, whatever the requests: the task planner's polls and runs of the
# built-in tasks, the executors' heartbeat, the plugin fleet's convergence. None of the measured
# routes touches these tables, so their statements are counted apart.
BACKGROUND = re.compile(r"\b(tasks|task_\w+|plugins)\b")


class StatementCounter:
    """Counts the statements the engine runs (requests' and background's apart), and keeps the
    requests' latest ones."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.count = 0
        self.background = 0
        self.latest: list[str] = []
        sqlalchemy.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if BACKGROUND.search(statement):
            self.background += 1
        else:
            self.count += 1
            self.latest.append(" ".join(statement.split())[:120])

    def background_rate(self, seconds: float) -> float:
        """The background's statements per second while no request runs."""
        before = self.background
        time.sleep(seconds)
        return (self.background - before) / seconds


def statements_per_route(requests: int) -> tuple[str, float, list[dict[str, Any]]]:
    directory = Path(tempfile.mkdtemp(prefix="relais-capacity-"))
    database_url, drop = _database(directory)
    triton = LiveTriton([StandInModel(name="echo", token_delay=0.025)]).start()
    settings = Settings(
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        data_dir=directory,
        database_url=database_url,
        admin_email=ADMIN[0],
        admin_password=ADMIN[1],
        models=[{"key": "fast", "backend": "triton", "url": triton.url, "model_name": "echo"}],
        default_model="fast",
        llm_default_max_tokens=REPLY_TOKENS,
        rate_limit_user="100000/minute",
        rate_limit_anonymous="100000/minute",
        rate_limit_login="100000/minute",
        llm_preload=False,
        retrieval_preload=False,
        embedding_preload=False,
        plugins_shipped=[],
    )
    stack = LiveStack(settings).start()
    rows: list[dict[str, Any]] = []
    try:
        counter = StatementCounter(stack.server.database.engine.sync_engine)
        background = counter.background_rate(10)
        with httpx.Client(base_url=stack.base_url, timeout=60) as http:
            email = f"capacity-{uuid.uuid4().hex[:8]}@relais.bench"
            http.post("/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
            tokens = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
            http.cookies.clear()
            bearer = {"authorization": f"Bearer {tokens['access_token']}"}

            def new_chat() -> int:
                return int(http.post("/api/chats", json={}, headers=bearer).json()["id"])

            def streamed_reply(chat_id: int) -> None:
                with http.stream(
                    "GET", f"/api/messages/stream/{chat_id}", params={"message": "Bonjour"}, headers=bearer
                ) as response:
                    response.raise_for_status()
                    for _ in response.iter_bytes():
                        pass

            def nothing() -> None:
                return None

            def sign_in(_: None) -> Any:
                http.cookies.clear()  # as a new visitor: no session cookie to authenticate first
                return http.post("/auth/login", json={"email": email, "password": PASSWORD})

            def send(chat: int) -> Any:
                return http.post("/api/messages", json={"chat_id": chat, "content": "Bonjour"}, headers=bearer)

            routes: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
                ("POST /auth/login", nothing, sign_in),
                ("GET /auth/me", nothing, lambda _: http.get("/auth/me", headers=bearer)),
                ("GET /api/chats", nothing, lambda _: http.get("/api/chats", headers=bearer)),
                ("POST /api/chats", nothing, lambda _: http.post("/api/chats", json={}, headers=bearer)),
                ("POST /api/messages (reply stored whole)", new_chat, send),
                ("GET /api/messages/stream/{id} (reply stored as it grows)", new_chat, streamed_reply),
            ]
            for name, prepare, call in routes:
                for _ in range(2):  # warm-up: caches, prepared statements, pools
                    call(prepare())
                total, elapsed = 0, 0.0
                for _ in range(requests):
                    argument = prepare()
                    time.sleep(0.05)  # writes of the preparation (and of the last call) settle
                    before, started = counter.count, time.perf_counter()
                    counter.latest = []
                    call(argument)
                    elapsed += time.perf_counter() - started
                    time.sleep(1.2 if "stream" in name else 0.05)  # a reply's last write lands after its end
                    total += counter.count - before
                    last_call = list(counter.latest)
                rows.append(
                    {
                        "route": name,
                        "statements": total / requests,
                        "ms": 1000 * elapsed / requests,
                        "last_call": last_call,
                    }
                )
                print(f"# {name}: {total / requests:.1f} statements", file=sys.stderr, flush=True)
    finally:
        stack.stop()
        triton.close()
        drop()
    return ("postgresql" if database_url.startswith("postgresql") else "sqlite"), background, rows


class RenewingEveryAppend(RedisJournal):
    """The baseline: the journal as it was before renewals were spaced, four commands an entry."""

    def _due(self, stream_id: str, *, end: bool) -> bool:
        return True


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the benchmark's own (its CPU is then the journal's alone), or the local one
    when `redis-server` is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield REDIS_URL
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    arguments = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(arguments, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _journal_cost(url: str, journal_class: type[RedisJournal], writers: int, entries_each: int) -> dict[str, Any]:
    prefix = f"bench:journal:{uuid.uuid4().hex}:"
    journal = journal_class(url, ttl=60, prefix=prefix)
    client = redis.Redis.from_url(url)
    try:

        def redis_cpu() -> float:
            info = client.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        async def writer(index: int) -> None:
            stream = f"s{index}"
            await journal.claim(stream, "user:1")
            for seq in range(entries_each):
                await journal.append(stream, [Entry(seq, b"x" * 60)], end=seq == entries_each - 1)

        cpu_before, own_before, started = redis_cpu(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer(index) for index in range(writers)))
        elapsed, cpu = time.perf_counter() - started, redis_cpu() - cpu_before
        own = time.process_time() - own_before
        entries = writers * entries_each
        return {
            "journal": journal_class.__name__,
            "writers": writers,
            "entries": entries,
            "entries_per_s_one_client": entries / elapsed,
            "redis_cpu_us_per_entry": 1e6 * cpu / entries,
            "writer_cpu_us_per_entry": 1e6 * own / entries,
            "entries_per_s_one_redis_core": entries / cpu if cpu else None,
        }
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        await journal.close()


def run(args: argparse.Namespace) -> int:
    requests = args.requests or (5 if args.quick else 20)
    dialect, background, routes = statements_per_route(requests)
    print(f"\n## Database statements per request ({dialect}, {requests} requests each)\n")
    print(f"A replica's background (tasks, heartbeat, plugin fleet) when idle: {background:.1f} statements/s.\n")
    print("| route | statements | ms |\n|---|---:|---:|")
    for row in routes:
        print(f"| {row['route']} | {row['statements']:.1f} | {row['ms']:.1f} |")
    each = 100 if args.quick else 500
    with private_redis() as url:
        journals = [asyncio.run(_journal_cost(url, kind, 64, each)) for kind in (RenewingEveryAppend, RedisJournal)]
    print(f"\n## Stream journal on Redis (single-entry appends, 64 writers x {each})\n")
    print("| journal | entries/s (one client) | writer CPU µs/entry | Redis CPU µs/entry | entries/s per Redis core |")
    print("|---|---:|---:|---:|---:|")
    for journal in journals:
        print(
            f"| {journal['journal']} | {journal['entries_per_s_one_client']:,.0f} | "
            f"{journal['writer_cpu_us_per_entry']:.0f} | {journal['redis_cpu_us_per_entry']:.1f} | "
            f"{journal['entries_per_s_one_redis_core'] or 0:,.0f} |"
        )
    baseline, current = journals
    print(
        f"\nRedis CPU per entry: {current['redis_cpu_us_per_entry'] / baseline['redis_cpu_us_per_entry']:.2f}x "
        f"the baseline; writer CPU: {current['writer_cpu_us_per_entry'] / baseline['writer_cpu_us_per_entry']:.2f}x"
    )
    document = {
        "database": dialect,
        "background_statements_per_s": background,
        "requests": requests,
        "routes": routes,
        "journal": journals,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
    }
    write_json(output_path(args, "capacity"), document)
    return 0
