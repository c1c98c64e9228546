"""The Orchestrator's memory, and retrieval inside chat replies: agent and chat documents, files
named with a message, an agent that learns from its conversations, isolation between users."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from relais.v1 import chat_pb2, chat_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc

from server.retrieval.store import PassageFilter
from tests.identity.helpers import Account, new_account
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton


def remember(http: httpx.Client, owner: Account, content: str, **metadata: Any) -> dict[str, Any]:
    response = http.post("/api/memory", json={"content": content, "metadata": metadata}, headers=owner.bearer)
    assert response.status_code == 201, response.text
    return dict(response.json())


def search(http: httpx.Client, owner: Account, q: str, limit: int = 5) -> list[dict[str, Any]]:
    response = http.get("/api/memory/search", params={"q": q, "limit": limit}, headers=owner.bearer)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_memory_is_stored_searched_by_meaning_and_forgotten(http: httpx.Client) -> None:
    owner = new_account(http)
    stack = remember(http, owner, "Le projet JSR utilise React et TailwindCSS", project="jsr", type="tech_stack")
    remember(http, owner, "Le chat de la voisine s'appelle Minou.")

    found = search(http, owner, "projet JSR")
    by_meaning = search(http, owner, "quel framework front-end pour JSR ?", limit=1)
    deleted = http.delete(f"/api/memory/{stack['id']}", headers=owner.bearer)
    after = search(http, owner, "projet JSR")
    stats = http.get("/api/stats", headers=owner.bearer).json()

    assert stack["metadata"] == {"project": "jsr", "type": "tech_stack"} and stack["agent_id"] is None
    assert found[0]["id"] == stack["id"] and found[0]["content"] == "Le projet JSR utilise React et TailwindCSS"
    assert found[0]["metadata"] == {"project": "jsr", "type": "tech_stack"} and found[0]["score"] > 0
    assert by_meaning[0]["id"] == stack["id"]
    assert deleted.status_code == 200 and all(match["id"] != stack["id"] for match in after)
    assert stats["memory_entries"] == 1
    metrics = http.get("/metrics").text
    assert 'relais_retrieval_search_seconds_count{mode="hybrid"}' in metrics
    assert 'relais_retrieval_passages_indexed_total{scope="memory"}' in metrics


def test_nobody_retrieves_another_users_memory_or_documents(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    secret = remember(http, owner, "Le code du coffre-fort est 4471-ALPHA.")
    document = http.post(
        "/api/documents/upload",
        files={"file": ("coffre.txt", b"Le code du coffre-fort est 4471-ALPHA.")},
        headers=owner.bearer,
    ).json()
    chat = http.post("/api/chats", json={}, headers=other.bearer).json()

    theirs = search(http, other, "code du coffre-fort", limit=50)
    with_file = http.post(
        "/api/messages",
        json={"chat_id": chat["id"], "content": "Quel est le code ?", "files": [document["id"]]},
        headers=other.bearer,
    )
    forget = http.delete(f"/api/memory/{secret['id']}", headers=other.bearer)

    assert theirs == []
    assert with_file.status_code == 404
    assert forget.status_code == 404
    assert search(http, owner, "code du coffre-fort")[0]["id"] == secret["id"]


def test_a_reply_is_given_and_cites_the_agents_and_the_chats_documents(
    http: httpx.Client, rag_triton: LiveTriton
) -> None:
    owner = new_account(http)
    helper = http.post(
        "/api/agents", json={"name": "Support", "system_prompt": "Tu aides."}, headers=owner.bearer
    ).json()
    manual = "Pour réinitialiser le routeur Zephyr, maintenir le bouton arrière dix secondes."
    http.post(
        "/api/documents/upload",
        files={"file": ("zephyr.txt", manual.encode())},
        data={"entity_type": "agent", "entity_id": str(helper["id"])},
        headers=owner.bearer,
    )
    chat = http.post("/api/chats", json={"agent_id": helper["id"]}, headers=owner.bearer).json()
    note = "Le client Dupont a un routeur Zephyr acheté en mars."
    http.post(
        "/api/documents/upload",
        files={"file": ("dupont.md", note.encode())},
        data={"entity_type": "chat", "entity_id": str(chat["id"])},
        headers=owner.bearer,
    )
    before = len(rag_triton.standin.requests)

    response = http.post(
        "/api/messages",
        json={"chat_id": chat["id"], "content": "Comment réinitialiser le routeur Zephyr ?"},
        headers=owner.bearer,
    )

    assert response.status_code == 200, response.text
    sources = response.json()["assistant_message"]["sources"]
    assert {source["source"]["path"] for source in sources} == {"zephyr.txt", "dupont.md"}
    assert all(source["source"]["document_id"] for source in sources)
    assert response.json()["user_message"]["sources"] == []
    prompt = bytes(rag_triton.standin.requests[before].raw_input_contents[0])[4:].decode()
    assert "maintenir le bouton" in prompt
    stored = http.get(f"/api/chats/{chat['id']}", headers=owner.bearer).json()["messages"][-1]
    assert stored["sources"] == sources


def test_files_named_with_a_message_are_consulted(http: httpx.Client) -> None:
    owner = new_account(http)
    document = http.post(
        "/api/documents/upload",
        files={"file": ("tarifs.txt", "Le forfait Pro coûte 42 euros par mois.".encode())},
        headers=owner.bearer,
    ).json()
    chat = http.post("/api/chats", json={}, headers=owner.bearer).json()

    without = http.post(
        "/api/messages", json={"chat_id": chat["id"], "content": "Combien coûte le forfait Pro ?"}, headers=owner.bearer
    )
    named = http.post(
        "/api/messages",
        json={"chat_id": chat["id"], "content": "Combien coûte le forfait Pro ?", "files": [document["id"]]},
        headers=owner.bearer,
    )

    assert without.json()["assistant_message"]["sources"] == []
    sources = named.json()["assistant_message"]["sources"]
    assert [source["source"]["document_id"] for source in sources] == [document["id"]]
    assert sources[0]["text"] == "Le forfait Pro coûte 42 euros par mois."


def test_an_agent_that_learns_remembers_its_exchanges_with_each_user(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    learner = http.post(
        "/api/agents",
        json={"name": "Mémoire", "system_prompt": "Retiens.", "learn_from_interaction": True, "is_public": True},
        headers=owner.bearer,
    ).json()
    first = http.post("/api/chats", json={"agent_id": learner["id"]}, headers=owner.bearer).json()
    http.post(
        "/api/messages", json={"chat_id": first["id"], "content": "Mon chien s'appelle Pixel."}, headers=owner.bearer
    )

    later = http.post("/api/chats", json={"agent_id": learner["id"]}, headers=owner.bearer).json()
    recalled = http.post(
        "/api/messages", json={"chat_id": later["id"], "content": "Comment s'appelle mon chien ?"}, headers=owner.bearer
    )
    stranger_chat = http.post("/api/chats", json={"agent_id": learner["id"]}, headers=other.bearer).json()
    stranger = http.post(
        "/api/messages",
        json={"chat_id": stranger_chat["id"], "content": "Comment s'appelle mon chien ?"},
        headers=other.bearer,
    )
    memories = search(http, owner, "chien Pixel")

    sources = recalled.json()["assistant_message"]["sources"]
    assert sources and sources[0]["source"]["path"].startswith("memory:")
    assert "Mon chien s'appelle Pixel." in sources[0]["text"]
    assert memories[0]["agent_id"] == learner["id"] and memories[0]["metadata"]["chat_id"] == first["id"]
    assert stranger.json()["assistant_message"]["sources"] == []

    deleted = http.delete(f"/api/agents/{learner['id']}", headers=owner.bearer)
    assert deleted.status_code == 200 and search(http, owner, "chien Pixel") == []


def test_deleting_a_chat_deletes_its_documents(http: httpx.Client, rag_stack: LiveStack) -> None:
    owner = new_account(http)
    chat = http.post("/api/chats", json={}, headers=owner.bearer).json()
    document = http.post(
        "/api/documents/upload",
        files={"file": ("notes.txt", b"Des notes de reunion.")},
        data={"entity_type": "chat", "entity_id": str(chat["id"])},
        headers=owner.bearer,
    ).json()
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]
    assert rag_stack.run(knowledge.passage_count(PassageFilter(entity=f"chat:{chat['id']}"))) == 1

    http.delete(f"/api/chats/{chat['id']}", headers=owner.bearer)

    assert http.get(f"/api/documents/{document['id']}", headers=owner.bearer).status_code == 404
    assert rag_stack.run(knowledge.passage_count(PassageFilter(entity=f"chat:{chat['id']}"))) == 0


def test_memory_and_replies_over_grpc(rag_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    metadata = [("authorization", owner.bearer["Authorization"])]
    with grpc.insecure_channel(rag_stack.grpc_target) as channel:
        memory = retrieval_pb2_grpc.MemoryServiceStub(channel)
        stored = memory.AddMemory(
            retrieval_pb2.AddMemoryRequest(content="Relais tourne sur le port 8000."), metadata=metadata
        )
        found = memory.SearchMemory(retrieval_pb2.SearchMemoryRequest(q="port de Relais"), metadata=metadata)
        chats = chat_pb2_grpc.ChatServiceStub(channel)
        chat = chats.CreateChat(chat_pb2.CreateChatRequest(), metadata=metadata)
        try:
            chat_pb2_grpc.MessageServiceStub(channel).SendMessage(
                chat_pb2.SendMessageRequest(chat_id=chat.id, content="Bonjour", files=[999_999]), metadata=metadata
            )
            raise AssertionError("a missing document must fail the message")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
        listed = chats.GetChat(chat_pb2.GetChatRequest(chat_id=chat.id), metadata=metadata)
    assert found.results[0].id == stored.id and found.query == "port de Relais"
    assert list(listed.messages) == []
