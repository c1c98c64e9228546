"""FoyerGPT and Orchestrator uploads on real Milvus Lite with the real embedding model: kinds
recognised by content, bad files refused with nothing kept, downloads, deletion, ownership."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from relais.options.v1 import options_pb2
from relais.v1 import retrieval_pb2, retrieval_pb2_grpc

from server.retrieval.store import PassageFilter
from tests.identity.helpers import Account, new_account
from tests.retrieval import files
from tests.support.live import LiveStack

GUIDE = (
    "Les décorateurs en Python enveloppent une fonction dans une autre.\n\n"
    "Un décorateur reçoit la fonction, renvoie une nouvelle fonction, et la syntaxe @nom l'applique.\n\n"
    "Le module functools fournit wraps pour garder le nom et la docstring de la fonction décorée."
)


def upload(
    http: httpx.Client, owner: Account, name: str, data: bytes, path: str = "/api/documents/upload", **form: Any
) -> httpx.Response:
    return http.post(path, files={"file": (name, data)}, data=form, headers=owner.bearer)


def agent(http: httpx.Client, owner: Account, **fields: Any) -> dict[str, Any]:
    response = http.post(
        "/api/agents", json={"name": "Guide", "system_prompt": "Aide.", **fields}, headers=owner.bearer
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def stored_files(stack: LiveStack) -> list[Path]:
    root = stack.settings.data_dir / "documents"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def passages_of(stack: LiveStack, source_key: str) -> int:
    knowledge = stack.server.retrieval.knowledge  # type: ignore[union-attr]
    return stack.run(knowledge.passage_count(PassageFilter(sources=(source_key,))))


def source_key(stack: LiveStack, document_id: int) -> str:
    from server.retrieval.models import Document

    async def read() -> str:
        async with stack.server.database.sessions() as session:
            document = await session.get(Document, document_id)
            assert document is not None
            return document.source_key

    return stack.run(read())


def test_an_agent_document_is_stored_indexed_downloaded_and_deleted(http: httpx.Client, rag_stack: LiveStack) -> None:
    owner = new_account(http)
    helper = agent(http, owner)

    created = upload(http, owner, "guide.md", GUIDE.encode(), entity_type="agent", entity_id=str(helper["id"]))
    assert created.status_code == 201, created.text
    document = created.json()
    assert {key: document[key] for key in ("filename", "file_size", "mime_type", "entity_type", "entity_id")} == {
        "filename": "guide.md",
        "file_size": len(GUIDE.encode()),
        "mime_type": "text/markdown",
        "entity_type": "agent",
        "entity_id": helper["id"],
    }
    assert document["uploaded_at"].endswith("Z") and document["chunk_count"] >= 2
    key = source_key(rag_stack, document["id"])
    assert passages_of(rag_stack, key) == document["chunk_count"]
    again = upload(http, owner, "guide.md", GUIDE.encode(), entity_type="agent", entity_id=str(helper["id"]))
    assert again.json()["id"] == document["id"] and passages_of(rag_stack, key) == document["chunk_count"]

    download = http.get(f"/api/documents/{document['id']}", headers=owner.bearer)
    assert download.status_code == 200 and download.content == GUIDE.encode()
    assert download.headers["content-type"].startswith("text/markdown")
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''guide.md"

    listed = http.get(
        "/api/documents", params={"entity_type": "agent", "entity_id": helper["id"]}, headers=owner.bearer
    )
    assert [d["id"] for d in listed.json()["documents"]] == [document["id"]] and listed.json()["total"] == 1

    deleted = http.delete(f"/api/documents/{document['id']}", headers=owner.bearer)
    assert deleted.status_code == 200, deleted.text
    assert passages_of(rag_stack, key) == 0
    assert http.get(f"/api/documents/{document['id']}", headers=owner.bearer).status_code == 404
    assert not any(path.name == key for path in stored_files(rag_stack))


def test_a_document_whose_file_is_missing_is_a_503_naming_no_path_and_can_still_be_deleted(
    http: httpx.Client, rag_stack: LiveStack, caplog: pytest.LogCaptureFixture
) -> None:
    owner = new_account(http)
    created = upload(http, owner, "absent.md", b"# Absent\n\nQuelques lignes.", entity_type="user", entity_id="0")
    assert created.status_code == 201, created.text
    document = created.json()
    key = source_key(rag_stack, document["id"])
    next(path for path in stored_files(rag_stack) if path.name == key).unlink()

    download = http.get(f"/api/documents/{document['id']}", headers=owner.bearer)
    assert download.status_code == 503, download.text
    assert "not available" in download.json()["detail"] and str(rag_stack.settings.data_dir) not in download.text
    assert any(key in record.getMessage() for record in caplog.records if record.name == "relais.retrieval")
    assert http.delete(f"/api/documents/{document['id']}", headers=owner.bearer).status_code == 200


@pytest.mark.parametrize(
    ("name", "make", "mime", "words"),
    [
        (
            "notes.pdf",
            lambda: files.pdf(["Relais cite ses sources.", "Chaque passage garde son empan."]),
            "application/pdf",
            "cite ses sources",
        ),
        (
            "notes.docx",
            lambda: files.docx(["Relais cite ses sources.", "Chaque passage garde son empan."]),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "garde son empan",
        ),
        ("script.py", lambda: b"def add(a, b):\n    return a + b\n", "text/x-python", "return a + b"),
        ("photo.png", files.png, "image/png", None),
    ],
)
def test_each_kind_is_recognised_and_its_text_indexed(
    http: httpx.Client, rag_stack: LiveStack, name: str, make: Any, mime: str, words: str | None
) -> None:
    owner = new_account(http)
    created = upload(http, owner, name, make())
    assert created.status_code == 201, created.text
    document = created.json()
    assert (document["mime_type"], document["entity_type"], document["entity_id"]) == (mime, "user", None)
    key = source_key(rag_stack, document["id"])
    if words is None:
        assert document["chunk_count"] == 0 and passages_of(rag_stack, key) == 0
        return
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]
    texts = [p.text for p in rag_stack.run(knowledge._store.passages(PassageFilter(sources=(key,))))]
    assert any(words in text for text in texts), texts


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("image.pdf", files.png(), 400, "not what .pdf promises"),
        ("notes.txt", b"\x00\x01\x02binary\xff\xfe", 400, "not a supported"),
        ("tool.exe", b"MZ\x90\x00", 400, ".exe are not accepted"),
        ("empty.txt", b"", 400, "empty"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <</Type /Catalog>> garbage", 400, "corrupt"),
        ("bomb.docx", files.docx_bomb(), 400, "bomb"),
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 100, 400, "not accepted"),
        ("huge.txt", b"a" * (10 * 1024 * 1024 + 1), 413, "10 MB"),
    ],
)
def test_bad_uploads_are_refused_with_nothing_kept(
    http: httpx.Client, rag_stack: LiveStack, name: str, data: bytes, status: int, message: str
) -> None:
    owner = new_account(http)
    before = stored_files(rag_stack)

    response = upload(http, owner, name, data)

    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert http.get("/api/documents", headers=owner.bearer).json()["total"] == 0
    assert stored_files(rag_stack) == before
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]
    assert rag_stack.run(knowledge.passage_count(PassageFilter(owner_id=owner.user_id))) == 0


def test_uploads_need_a_target_the_caller_may_write(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    public = agent(http, owner, is_public=True)
    private = agent(http, owner, is_public=False)
    chat = http.post("/api/chats", json={}, headers=owner.bearer).json()
    text = b"Un document."

    not_owner = upload(http, other, "a.txt", text, entity_type="agent", entity_id=str(public["id"]))
    hidden = upload(http, other, "a.txt", text, entity_type="agent", entity_id=str(private["id"]))
    foreign_chat = upload(http, other, "a.txt", text, entity_type="chat", entity_id=str(chat["id"]))
    no_id = upload(http, owner, "a.txt", text, entity_type="chat")
    bad_type = upload(http, owner, "a.txt", text, entity_type="planet", entity_id="1")
    no_file = http.post("/api/documents/upload", data={"entity_type": "chat"}, headers=owner.bearer)
    anonymous = http.post("/api/documents/upload", files={"file": ("a.txt", text)})

    assert not_owner.status_code == 403 and hidden.status_code == 404 and foreign_chat.status_code == 404
    assert no_id.status_code == 422 and bad_type.status_code == 422 and no_file.status_code == 422
    assert anonymous.status_code == 401


def test_the_orchestrator_upload_attaches_to_a_conversation(http: httpx.Client) -> None:
    owner = new_account(http)
    conversation = http.post("/api/chats", json={"title": "Analyse"}, headers=owner.bearer).json()

    created = upload(
        http, owner, "data.json", b'{"projet": "jsr"}', path="/api/upload", conversation_id=str(conversation["id"])
    )
    unknown = upload(http, owner, "data.json", b"{}", path="/api/upload", conversation_id="conv-123")

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["entity_type"], body["entity_id"], body["conversation_id"], body["mime_type"]) == (
        "chat",
        conversation["id"],
        conversation["id"],
        "application/json",
    )
    assert unknown.status_code == 404


def test_documents_are_private_to_their_owner(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    document = upload(http, owner, "secret.txt", b"Le code du coffre est 4471.").json()

    assert http.get(f"/api/documents/{document['id']}", headers=other.bearer).status_code == 404
    assert http.delete(f"/api/documents/{document['id']}", headers=other.bearer).status_code == 404
    assert http.get("/api/documents", headers=other.bearer).json()["total"] == 0
    assert http.get(f"/api/documents/{document['id']}", headers=owner.bearer).status_code == 200


def test_upload_and_download_over_grpc(rag_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    metadata = [("authorization", owner.bearer["Authorization"])]
    # An image is stored, not indexed: a large file without minutes of embedding.
    data = files.png(160, 160, noise=True)
    with grpc.insecure_channel(rag_stack.grpc_target) as channel:
        documents = retrieval_pb2_grpc.DocumentServiceStub(channel)
        created = documents.UploadDocument(
            retrieval_pb2.UploadDocumentRequest(
                file=options_pb2.UploadedFile(filename="../../etc/photo.png", data=data)
            ),
            metadata=metadata,
        )
        pieces = list(
            documents.GetDocument(retrieval_pb2.GetDocumentRequest(document_id=created.id), metadata=metadata)
        )
    assert (created.filename, created.mime_type, created.chunk_count) == ("photo.png", "image/png", 0)
    assert len(pieces) > 1 and b"".join(piece.data for piece in pieces) == data
    assert {piece.content_type for piece in pieces} == {"image/png"}


def test_active_content_is_downloaded_sandboxed_and_unsniffed(http: httpx.Client) -> None:
    owner = new_account(http)
    page = b"<html><body><script>fetch('/api/keys')</script>Bonjour</body></html>"
    document = http.post("/api/documents/upload", files={"file": ("page.html", page)}, headers=owner.bearer).json()

    download = http.get(f"/api/documents/{document['id']}", headers=owner.bearer)

    assert download.status_code == 200 and download.content == page
    assert download.headers["content-type"].startswith("text/html")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"].split(";")[0] == "sandbox"
