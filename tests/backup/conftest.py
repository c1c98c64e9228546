"""A populated source instance (SQLite, the real embedding model, Milvus Lite, the Triton
stand-in as chat model) and a fresh target instance per database, both with real HTTP."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, POSTGRES_URL, stack_settings
from tests.identity.helpers import Account, admin, new_account
from tests.retrieval import files
from tests.retrieval.conftest import rag_triton  # noqa: F401  (a fixture, used by name)
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton

ADMIN_TOKEN = {"Authorization": "Bearer admin-token"}
USER_TOKEN = {"Authorization": "Bearer user-token"}
GUIDE = "Pour réinitialiser le routeur, maintenez le bouton reset dix secondes. " * 8
SOUP = "La soupe à l'oignon se gratine au four avec du gruyère. " * 6
BODY_LIMIT = 4 * 1024


def _settings(data_dir: Path, database_url: str, triton: LiveTriton, **extra: Any) -> Any:
    return stack_settings(
        data_dir,
        database_url,
        corpus_dir=data_dir / "corpus",
        default_model="fast",
        llm_default_max_tokens=8,
        chunk_chars=200,
        chunk_overlap=40,
        models=[{"key": "fast", "backend": "triton", "url": triton.url, "model_name": "echo"}],
        **extra,
    )


@dataclass
class Populated:
    stack: LiveStack
    alice: Account
    api_key: str
    document_ids: list[int]


def _populate(http: httpx.Client, stack: LiveStack) -> Populated:
    root = admin(http)
    alice = new_account(http, full_name="Alice Martin", trigramme="ALM")
    bob = new_account(http)
    role = http.post(
        "/admin/roles", json={"name": "auditors", "permissions": ["users:read"]}, headers=root.bearer
    ).json()
    assert http.post(f"/admin/users/{alice.user_id}/roles/{role['id']}", headers=root.bearer).status_code < 300
    key = http.post("/api/keys", json={"name": "ci", "scopes": ["users:read"]}, headers=alice.bearer).json()["key"]
    agent = http.post(
        "/api/agents", json={"name": "Support", "system_prompt": "Tu aides.", "temperature": 0.3}, headers=alice.bearer
    ).json()
    chat = http.post("/api/chats", json={"agent_id": agent["id"]}, headers=alice.bearer).json()
    guide = http.post(
        "/api/documents/upload",
        files={"file": ("guide.txt", GUIDE.encode(), "text/plain")},
        data={"entity_type": "agent", "entity_id": str(agent["id"])},
        headers=alice.bearer,
    ).json()
    image = http.post(
        "/api/documents/upload",
        files={"file": ("photo.png", files.png(8, 8, noise=True), "image/png")},
        data={"entity_type": "chat", "entity_id": str(chat["id"])},
        headers=alice.bearer,
    ).json()
    reply = http.post(
        "/api/messages", json={"chat_id": chat["id"], "content": "Comment réinitialiser ?"}, headers=alice.bearer
    )
    assert reply.status_code < 300, reply.text
    for who, fact in ((alice, "Le projet JSR utilise React"), (bob, "Bob préfère le thé")):
        assert http.post("/api/memory", json={"content": fact, "metadata": {"k": 1}}, headers=who.bearer).is_success
    corpus = stack.settings.corpus_path
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "soupe.txt").write_text(SOUP)
    (corpus / "fiche.pdf").write_bytes(files.pdf(["Gratiner la soupe au four chaud."]))
    assert http.post("/rag/reindex", json={}, headers=root.bearer).is_success
    return Populated(stack=stack, alice=alice, api_key=key, document_ids=[guide["id"], image["id"]])


@pytest.fixture(scope="module")
def source(rag_triton: LiveTriton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:  # noqa: F811
    data_dir = tmp_path_factory.mktemp("backup-source")
    settings = _settings(
        data_dir,
        f"sqlite:///{data_dir / 'relais.db'}",
        rag_triton,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
    )
    stack = services.start_stack_with_test_service(settings, static_tokens=True)
    with httpx.Client(base_url=stack.base_url, timeout=120) as http:
        populated = _populate(http, stack)
    yield populated
    stack.stop()


@pytest.fixture(scope="module")
def fresh_database_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the same kind as `database_url` that nothing else uses."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('backup-sqlite') / 'relais.db'}"
        return
    schema = f"relais_b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{POSTGRES_URL}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def target(
    fresh_database_url: str,
    rag_triton: LiveTriton,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    """An instance with no account at all (the static admin token calls it). Its bodies are
    limited to 4 KiB, far less than an archive: imports are streamed past that limit."""
    settings = _settings(
        tmp_path_factory.mktemp("backup-target"),
        fresh_database_url,
        rag_triton,
        retrieval_preload=True,
        max_body_bytes=BODY_LIMIT,
    )
    stack = services.start_stack_with_test_service(settings, static_tokens=True)
    yield stack
    stack.stop()
