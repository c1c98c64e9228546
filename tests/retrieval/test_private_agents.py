"""Issue 12 item 2: an agent made private stops serving the chats others opened while it was
public: every reply and read checks access to it, and retrieval filters each passage by who
may read it now, over HTTP and gRPC."""

from __future__ import annotations

import grpc
import httpx
from relais.v1 import chat_pb2, chat_pb2_grpc

from server.auth import Principal
from tests.identity.helpers import new_account
from tests.support.live import LiveStack

WIFI = "Le mot de passe du Wi-Fi de l'agence est ZEBRA-42."
VAULT = "Le code du coffre de l'agence est 9917-OMEGA."


def _upload(http: httpx.Client, headers: dict[str, str], agent_id: int, name: str, text: str) -> None:
    response = http.post(
        "/api/documents/upload",
        files={"file": (name, text.encode())},
        data={"entity_type": "agent", "entity_id": str(agent_id)},
        headers=headers,
    )
    assert response.status_code == 201, response.text


def test_an_agent_made_private_stops_serving_other_users_chats(http: httpx.Client, rag_stack: LiveStack) -> None:
    owner, other = new_account(http), new_account(http)
    body = {"name": "Accueil", "system_prompt": "Tu accueilles.", "is_public": True}
    agent = http.post("/api/agents", json=body, headers=owner.bearer).json()
    _upload(http, owner.bearer, agent["id"], "wifi.txt", WIFI)
    chat = http.post("/api/chats", json={"agent_id": agent["id"]}, headers=other.bearer).json()
    question = {"chat_id": chat["id"], "content": "Quel est le mot de passe du Wi-Fi ?"}
    while_public = http.post("/api/messages", json=question, headers=other.bearer)

    private = {"is_public": False, "name": "Projet confidentiel"}
    assert http.put(f"/api/agents/{agent['id']}", json=private, headers=owner.bearer).status_code == 200
    _upload(http, owner.bearer, agent["id"], "coffre.txt", VAULT)
    reply = http.post(
        "/api/messages", json={**question, "content": "Quel est le code du coffre ?"}, headers=other.bearer
    )
    streamed = http.get(
        f"/api/messages/stream/{chat['id']}", params={"message": "Et le coffre ?"}, headers=other.bearer
    )
    read = http.get(f"/api/chats/{chat['id']}", headers=other.bearer).json()
    listed = http.get("/api/chats", headers=other.bearer).json()["chats"]
    with grpc.insecure_channel(rag_stack.grpc_target) as channel:
        try:
            chat_pb2_grpc.MessageServiceStub(channel).SendMessage(
                chat_pb2.SendMessageRequest(chat_id=chat["id"], content="Le coffre ?"),
                metadata=[("authorization", other.bearer["Authorization"])],
                timeout=60,
            )
            grpc_code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            grpc_code = error.code()

    assert while_public.status_code == 200, while_public.text
    assert [s["source"]["path"] for s in while_public.json()["assistant_message"]["sources"]] == ["wifi.txt"]
    assert reply.status_code == 403 and streamed.status_code == 403, reply.text
    assert grpc_code == grpc.StatusCode.PERMISSION_DENIED
    assert "Projet confidentiel" not in str(read) and "Projet confidentiel" not in str(listed)
    assert read["agent"] is None and len(read["messages"]) == 2
    # The owner's own chats with it go on, with both documents.
    mine = http.post("/api/chats", json={"agent_id": agent["id"]}, headers=owner.bearer).json()
    own = http.post(
        "/api/messages", json={"chat_id": mine["id"], "content": "Le code du coffre ?"}, headers=owner.bearer
    )
    assert own.status_code == 200 and "coffre.txt" in {
        s["source"]["path"] for s in own.json()["assistant_message"]["sources"]
    }


def test_retrieval_gives_a_reader_only_the_passages_they_may_read(http: httpx.Client, rag_stack: LiveStack) -> None:
    owner, other = new_account(http), new_account(http)
    body = {"name": "Interne", "system_prompt": "Tu aides.", "is_public": True}
    agent = http.post("/api/agents", json=body, headers=owner.bearer).json()
    _upload(http, owner.bearer, agent["id"], "coffre.txt", VAULT)
    chat = http.post("/api/chats", json={"agent_id": agent["id"]}, headers=other.bearer).json()
    knowledge = rag_stack.server.retrieval.knowledge  # type: ignore[union-attr]

    def passages(account_id: int) -> list[str]:
        reader = Principal(subject=f"user:{account_id}", user_id=account_id)
        found = rag_stack.run(
            knowledge.for_reply(
                reader, chat_id=chat["id"], agent_id=agent["id"], file_sources=[], query="code du coffre"
            )
        )
        return [passage.path for passage in found]

    public = passages(other.user_id)
    http.put(f"/api/agents/{agent['id']}", json={"is_public": False}, headers=owner.bearer).raise_for_status()

    assert public == ["coffre.txt"]
    assert passages(other.user_id) == []
    assert passages(owner.user_id) == ["coffre.txt"]
