"""Issue 14, item 2: PostgreSQL restarted, crashed or stopped under writers, on a real `relais
serve` process and a PostgreSQL instance of the test's own.

Writers create chats over HTTP and gRPC, each logical request with its Idempotency-Key, retried
with the same key until it is answered. Meanwhile PostgreSQL restarts (`fast`, `immediate`) and
stops for three seconds. Every refusal is a 503 (UNAVAILABLE) with Retry-After, never a 500;
the outage is logged once, not once per request; every acknowledged chat exists exactly once.
Then a connection cut exactly at COMMIT: the answer says the outcome is unknown, and the retry
neither loses nor duplicates the chat.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from relais.v1 import chat_pb2, chat_pb2_grpc

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.postgres import PostgresInstance
from tests.support.process import RelaisProcess

pytestmark = pytest.mark.slow

HTTP_WRITERS = 6
GRPC_WRITERS = 3
# psycopg sends COMMIT as a simple query: 'Q', its length (4 + 7), the text.
COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresInstance]:
    with PostgresInstance() as instance:
        yield instance


@dataclass
class Tally:
    acknowledged: list[str] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)


def login(relais: RelaisProcess) -> str:
    response = httpx.post(
        f"{relais.base_url}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    return str(response.json()["access_token"])


async def http_writer(relais: RelaisProcess, token: str, name: str, stop: asyncio.Event, tally: Tally) -> None:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=relais.base_url, timeout=30) as http:
        for index in range(100_000):
            if stop.is_set():
                return
            title, key = f"{name}-{index}", str(uuid.uuid4())
            while True:
                response = await http.post(
                    "/api/chats", json={"title": title}, headers={**headers, "idempotency-key": key}
                )
                code = response.json().get("code", "") if response.status_code != 201 else ""
                if response.status_code == 201 or code == "IDEMPOTENT_REQUEST_SAVED":
                    tally.acknowledged.append(title)
                    break
                if response.status_code == 503 and response.headers.get("retry-after"):
                    tally.refusals[code] += 1
                elif code != "IDEMPOTENCY_KEY_IN_USE":
                    tally.unexpected.append(f"HTTP {response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.1)


async def grpc_writer(relais: RelaisProcess, token: str, name: str, stop: asyncio.Event, tally: Tally) -> None:
    async with grpc.aio.insecure_channel(relais.grpc_target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        for index in range(100_000):
            if stop.is_set():
                return
            title, key = f"{name}-{index}", str(uuid.uuid4())
            metadata = (("authorization", f"Bearer {token}"), ("idempotency-key", key))
            while True:
                try:
                    await stub.CreateChat(chat_pb2.CreateChatRequest(title=title), metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.ALREADY_EXISTS and "was saved" in (error.details() or ""):
                        tally.acknowledged.append(title)
                        break
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        tally.refusals[f"grpc {error.code().name}"] += 1
                    elif error.code() != grpc.StatusCode.ABORTED:
                        tally.unexpected.append(f"gRPC {error.code().name} {error.details()}")
                    await asyncio.sleep(0.1)
                else:
                    tally.acknowledged.append(title)
                    break


async def write_through_outages(relais: RelaisProcess, postgres: PostgresInstance) -> Tally:
    token, tally, stop = login(relais), Tally(), asyncio.Event()
    writers = [
        *(http_writer(relais, token, f"http{n}", stop, tally) for n in range(HTTP_WRITERS)),
        *(grpc_writer(relais, token, f"grpc{n}", stop, tally) for n in range(GRPC_WRITERS)),
    ]
    tasks = [asyncio.create_task(writer) for writer in writers]
    for disrupt in (
        lambda: postgres.restart("fast"),
        lambda: postgres.restart("immediate"),
        lambda: (postgres.stop("fast"), time.sleep(3), postgres.start()),
    ):
        await asyncio.sleep(1.5)
        await asyncio.to_thread(disrupt)
    await asyncio.sleep(2)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return tally


def chat_titles(postgres: PostgresInstance) -> Counter[str]:
    with psycopg.connect(postgres.url) as connection:
        return Counter(str(title) for (title,) in connection.execute("SELECT title FROM chats"))


def test_restarts_and_a_stop_are_503s_logged_once_and_no_chat_is_lost_or_doubled(
    postgres: PostgresInstance, tmp_path: Path
) -> None:
    with RelaisProcess(tmp_path, RELAIS_DATABASE_URL=postgres.url) as relais:
        tally = asyncio.run(write_through_outages(relais, postgres))
        log = relais.log()

    assert tally.unexpected == []
    assert sum(tally.refusals.values()) > 0, "the outages were not seen"
    assert set(tally.refusals) <= {"DATABASE_UNAVAILABLE", "COMMIT_OUTCOME_UNKNOWN", "grpc UNAVAILABLE"}
    titles = chat_titles(postgres)
    assert [title for title, count in titles.items() if count > 1] == []
    assert set(titles) == set(tally.acknowledged)
    lines = [line for line in log.splitlines() if ".access " not in line]
    outages = sum("PostgreSQL unreachable" in line for line in lines)
    assert 1 <= outages <= 3, "\n".join(lines[-40:])
    assert sum("reachable again" in line for line in lines) == outages
    problems = [line for line in lines if "Traceback" in line or ("Error" in line and "unreachable" not in line)]
    assert problems == [], "\n".join(problems[:40])


class CommitCutter:
    """A TCP proxy in front of PostgreSQL. Armed, it cuts the connection of the first transaction
    that inserts a chat, at its COMMIT: after passing it on ("after": the chat is committed, the
    answer lost) or instead of it ("before": nothing is committed). The client cannot tell which."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed: str | None = None
        self.cuts = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> CommitCutter:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = server.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _handle(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        server, to_server = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        cut = asyncio.Event()

        async def upstream() -> None:
            inserted = False
            while data := await client.read(65536):
                inserted = inserted or (self.armed is not None and b"INSERT INTO chats" in data)
                if inserted and COMMIT in data and self.armed is not None:
                    mode, self.armed = self.armed, None
                    self.cuts += 1
                    cut.set()
                    if mode == "after":
                        to_server.write(data)
                        await to_server.drain()
                        await asyncio.sleep(0.3)  # PostgreSQL commits; its answer goes nowhere
                    return
                to_server.write(data)
                await to_server.drain()

        async def downstream() -> None:
            while (data := await server.read(65536)) and not cut.is_set():
                to_client.write(data)
                await to_client.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (to_client, to_server):
            writer.close()


@pytest.fixture
def cutter(postgres: PostgresInstance) -> Iterator[CommitCutter]:
    proxy = CommitCutter(postgres.port).start()
    yield proxy
    proxy.close()


def create_over_http(relais: RelaisProcess, token: str, title: str, key: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "idempotency-key": key}
    return httpx.post(f"{relais.base_url}/api/chats", json={"title": title}, headers=headers, timeout=30)


def retry_until_settled(send: object) -> httpx.Response:
    """Retries while the first request's outcome is still being settled (409 IDEMPOTENCY_KEY_IN_USE)."""
    assert callable(send)
    deadline = time.monotonic() + 20
    while True:
        response: httpx.Response = send()
        if response.json().get("code") != "IDEMPOTENCY_KEY_IN_USE" or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_commit_cut_off_says_so_and_its_retry_never_duplicates(
    postgres: PostgresInstance, cutter: CommitCutter, tmp_path: Path
) -> None:
    url = postgres.url.replace(f":{postgres.port}/", f":{cutter.port}/")
    with RelaisProcess(tmp_path, RELAIS_DATABASE_URL=url) as relais:
        token = login(relais)
        for mode, title in (("after", "coupé après"), ("before", "coupé avant")):
            key = str(uuid.uuid4())
            cutter.armed = mode
            first = create_over_http(relais, token, title, key)
            assert first.status_code == 503 and first.json()["code"] == "COMMIT_OUTCOME_UNKNOWN", first.text
            assert first.headers["retry-after"]
            retry = retry_until_settled(lambda title=title, key=key: create_over_http(relais, token, title, key))
            if mode == "after":  # saved: the retry says so, naming the chat, and creates nothing
                assert retry.status_code == 409 and retry.json()["code"] == "IDEMPOTENT_REQUEST_SAVED", retry.text
                assert "chats:" in retry.json()["detail"]
            else:  # not saved: the retry creates it
                assert retry.status_code == 201, retry.text
            assert chat_titles(postgres)[title] == 1

        # The same over gRPC.
        cutter.armed = "after"
        metadata = (("authorization", f"Bearer {token}"), ("idempotency-key", str(uuid.uuid4())))
        with grpc.insecure_channel(relais.grpc_target) as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            request = chat_pb2.CreateChatRequest(title="coupé gRPC")
            codes = []
            for _ in range(50):
                try:
                    stub.CreateChat(request, metadata=metadata, timeout=30)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    codes.append(error.code())
                if codes[-1] not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED):
                    break
                time.sleep(0.2)
        assert codes[0] == grpc.StatusCode.UNAVAILABLE and codes[-1] == grpc.StatusCode.ALREADY_EXISTS, codes
        assert chat_titles(postgres)["coupé gRPC"] == 1
    assert cutter.cuts == 3
