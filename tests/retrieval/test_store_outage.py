"""A Milvus server named by RELAIS_MILVUS_URI (here a Milvus Lite server this test runs and
stops): nothing is spawned, an outage is a clear 503 with nothing half-stored, deletions made
during it are finished once the server is back, and the service recovers on its own."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from server.ports import unused_port
from server.retrieval.lite import server_command
from server.retrieval.store import _without_credentials
from tests.conftest import stack_settings
from tests.identity.helpers import new_account
from tests.retrieval.test_cleanup import ledger
from tests.retrieval.test_documents import GUIDE, passages_of, source_key, stored_files, upload
from tests.retrieval.test_memory_and_replies import remember, search
from tests.support import services
from tests.support.live import LiveStack


class MilvusServer:
    """`python -m milvus_lite server` on a fixed port, so that it can come back where it was."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = unused_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MilvusServer:
        self._process = subprocess.Popen(
            server_command(self.data_dir, self.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self._process.poll() is None, "Milvus Lite exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("Milvus Lite did not start")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(2)
            self._process.wait(timeout=15)
        self._process = None


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served_stack(milvus: MilvusServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("served")
    settings = stack_settings(
        data,
        f"sqlite:///{data / 'db.sqlite'}",
        milvus_uri=milvus.uri,
        retrieval_preload=True,
        retrieval_cleanup_seconds=0.2,
        chunk_chars=200,
        chunk_overlap=40,
    )
    live = services.start_stack_with_test_service(settings)
    yield live
    live.stop()


@pytest.fixture
def http(served_stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served_stack.base_url, timeout=120) as client:
        yield client


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


def test_an_outage_is_a_503_with_nothing_half_stored_and_the_service_recovers(
    http: httpx.Client, served_stack: LiveStack, milvus: MilvusServer, caplog: pytest.LogCaptureFixture
) -> None:
    owner = new_account(http)
    assert not (served_stack.settings.data_dir / "milvus").exists(), "spawned its own Milvus Lite"
    kept = upload(http, owner, "guide.md", GUIDE.encode())
    assert kept.status_code == 201, kept.text
    kept_key = source_key(served_stack, kept.json()["id"])
    remember(http, owner, "Le rendez-vous chez le dentiste est mardi.")
    assert http.get("/health").json()["chromadb"] == "connected"

    milvus.stop()
    try:
        health = http.get("/health").json()
        assert (health["chromadb"], health["faiss_ok"]) == ("disconnected", False)
        files_before = set(stored_files(served_stack))

        refused = upload(http, owner, "autre.md", b"Un autre guide, sur les generateurs.")
        assert refused.status_code == 503, refused.text
        assert "vector store" in refused.text.lower()
        assert http.post("/api/memory", json={"content": "x y z"}, headers=owner.bearer).status_code == 503
        assert http.get("/api/memory/search", params={"q": "dentiste"}, headers=owner.bearer).status_code == 503
        listed = http.get("/api/documents", headers=owner.bearer).json()["documents"]
        assert [document["filename"] for document in listed] == ["guide.md"]
        assert set(stored_files(served_stack)) == files_before

        # Deleting still works: the row and the bytes go now, the passages once the store is back.
        assert http.delete(f"/api/documents/{kept.json()['id']}", headers=owner.bearer).status_code == 200
        assert http.get(f"/api/documents/{kept.json()['id']}", headers=owner.bearer).status_code == 404
        assert not set(stored_files(served_stack))
        assert ledger(served_stack, [kept_key]) == {kept_key: "orphaned"}
    finally:
        milvus.start()

    wait_for(lambda: http.get("/health").json()["chromadb"] == "connected", "the store to be back")
    wait_for(lambda: ledger(served_stack, [kept_key]) == {}, "the cleanup sweep")
    assert passages_of(served_stack, kept_key) == 0
    assert [found["content"] for found in search(http, owner, "dentiste")][:1] == [
        "Le rendez-vous chez le dentiste est mardi."
    ]
    again = upload(http, owner, "autre.md", b"Un autre guide, sur les generateurs.")
    assert again.status_code == 201, again.text
    assert passages_of(served_stack, source_key(served_stack, again.json()["id"])) > 0
    # Each refused call is one warning saying why, not a pymilvus traceback per failed RPC.
    assert [r for r in caplog.records if r.name.startswith("pymilvus") and r.levelno >= logging.ERROR] == []
    assert any(r.name == "relais.grpc.errors" and "The vector store failed" in r.getMessage() for r in caplog.records)


def test_an_embedded_milvus_lite_that_dies_is_started_again(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", retrieval_preload=True)
    stack = services.start_stack_with_test_service(settings)
    try:
        with httpx.Client(base_url=stack.base_url, timeout=120) as client:
            owner = new_account(client)
            remember(client, owner, "La clef du garage est sous le pot de fleurs.")
            assert stack.server.retrieval is not None
            lite = stack.server.retrieval.store._lite
            assert lite is not None and lite.running
            lite._process.kill()  # type: ignore[union-attr]
            wait_for(lambda: not lite.running, "the child to be gone")

            found = search(client, owner, "garage")
            assert [memory["content"] for memory in found][:1] == ["La clef du garage est sous le pot de fleurs."]
            assert lite.running and client.get("/health").json()["chromadb"] == "connected"
    finally:
        stack.stop()


def test_a_store_address_is_named_without_its_credentials() -> None:
    assert _without_credentials("https://root:s3cret@milvus.internal:19530") == "https://milvus.internal:19530"
    assert _without_credentials("http://milvus:19530") == "http://milvus:19530"
