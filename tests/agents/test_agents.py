"""FoyerGPT's agents over HTTP and gRPC, on SQLite and PostgreSQL: visibility, ownership, quota."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any

import grpc
import httpx
import pytest
from relais.v1 import agent_pb2, agent_pb2_grpc

from tests.identity.helpers import Account, admin, new_account

SEED_AGENT = {
    "name": "Expert Python",
    "system_prompt": "Tu es un expert en Python...",
    "learn_from_interaction": True,
    "is_public": False,
    "model": "mistral-medium",
    "temperature": 0.7,
    "avatar_url": "/avatars/python.png",
}


def create(http: httpx.Client, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": f"agent-{uuid.uuid4().hex[:6]}", "system_prompt": "Be helpful.", **fields}
    response = http.post("/api/agents", json=body, headers=account.bearer)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_returns_the_documented_agent(http: httpx.Client) -> None:
    trigramme = "".join(random.choice(string.ascii_uppercase) for _ in range(4))
    owner = new_account(http, trigramme=trigramme)
    agent = create(http, owner, **SEED_AGENT)

    assert {key: agent[key] for key in SEED_AGENT} == SEED_AGENT
    assert agent["owner_id"] == owner.user_id
    assert agent["owner"] == {"id": owner.user_id, "trigramme": trigramme}
    assert agent["created_at"].endswith("Z") and isinstance(agent["id"], int)


def test_defaults_apply_to_what_is_not_given(http: httpx.Client) -> None:
    agent = create(http, new_account(http))
    assert (agent["model"], agent["temperature"], agent["is_public"], agent["avatar_url"]) == ("auto", 0.7, False, None)


def test_public_agents_are_listed_for_everyone_with_pagination(http: httpx.Client) -> None:
    owner = new_account(http)
    public = [create(http, owner, is_public=True) for _ in range(3)]
    private = create(http, owner)

    listed = http.get("/api/agents", params={"limit": 2}).json()  # no credentials needed
    assert (listed["limit"], listed["offset"]) == (2, 0) and len(listed["agents"]) == 2
    assert listed["total"] >= 3
    everything = http.get("/api/agents", params={"limit": 100}).json()["agents"]
    ids = [agent["id"] for agent in everything]
    assert {agent["id"] for agent in public} <= set(ids) and private["id"] not in ids
    assert ids.index(public[2]["id"]) < ids.index(public[0]["id"])  # newest first
    second_page = http.get("/api/agents", params={"limit": 2, "offset": 2}).json()
    assert second_page["offset"] == 2 and second_page["agents"][0]["id"] == ids[2]


def test_my_agents_are_the_callers_own_public_and_private(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    mine = {create(http, owner)["id"], create(http, owner, is_public=True)["id"]}
    create(http, other, is_public=True)

    listed = http.get("/api/agents/my", headers=owner.bearer).json()["agents"]
    assert {agent["id"] for agent in listed} == mine
    assert http.get("/api/agents/my").status_code == 401


def test_a_private_agent_is_invisible_to_others(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    agent = create(http, owner)

    assert http.get(f"/api/agents/{agent['id']}", headers=owner.bearer).status_code == 200
    for headers in (other.bearer, {}):
        response = http.get(f"/api/agents/{agent['id']}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    # Not even its existence leaks through update or delete.
    assert http.put(f"/api/agents/{agent['id']}", json={"name": "x"}, headers=other.bearer).status_code == 404
    assert http.delete(f"/api/agents/{agent['id']}", headers=other.bearer).status_code == 404


def test_only_the_owner_changes_or_deletes_a_public_agent(http: httpx.Client) -> None:
    owner, other = new_account(http), new_account(http)
    agent = create(http, owner, is_public=True)

    assert http.get(f"/api/agents/{agent['id']}", headers=other.bearer).status_code == 200
    refused = http.put(f"/api/agents/{agent['id']}", json={"name": "mine now"}, headers=other.bearer)
    assert refused.status_code == 403 and refused.json()["code"] == "AUTHORIZATION_ERROR"
    assert http.delete(f"/api/agents/{agent['id']}", headers=other.bearer).status_code == 403

    updated = http.put(
        f"/api/agents/{agent['id']}", json={"name": "Expert Python Avancé", "temperature": 0.8}, headers=owner.bearer
    ).json()
    assert (updated["name"], updated["temperature"]) == ("Expert Python Avancé", pytest.approx(0.8))
    assert updated["system_prompt"] == agent["system_prompt"] and updated["is_public"] is True  # kept

    assert http.delete(f"/api/agents/{agent['id']}", headers=owner.bearer).status_code == 200
    assert http.get(f"/api/agents/{agent['id']}", headers=owner.bearer).status_code == 404


def test_bad_agents_are_refused_with_every_reason(http: httpx.Client) -> None:
    owner = new_account(http)
    response = http.post(
        "/api/agents",
        json={"name": " ", "temperature": 3, "avatar_url": "javascript:alert(1)", "model": "m" * 101},
        headers=owner.bearer,
    )
    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert fields == {"name", "system_prompt", "temperature", "avatar_url", "model"}
    assert http.get("/api/agents/my", headers=owner.bearer).json()["agents"] == []  # nothing stored


def test_a_user_owns_at_most_50_agents(http: httpx.Client) -> None:
    owner = new_account(http)
    for _ in range(50):
        create(http, owner)
    response = http.post("/api/agents", json={"name": "one more", "system_prompt": "x"}, headers=owner.bearer)
    assert response.status_code == 400 and response.json()["code"] == "AGENT_LIMIT_REACHED"
    assert len(http.get("/api/agents/my", headers=owner.bearer).json()["agents"]) == 50


def test_deleting_an_account_deletes_its_agents(http: httpx.Client) -> None:
    owner = new_account(http)
    agent = create(http, owner, is_public=True)
    assert http.delete(f"/admin/users/{owner.user_id}", headers=admin(http).bearer).status_code == 204
    assert http.get(f"/api/agents/{agent['id']}").status_code == 404


def test_agents_over_grpc(http: httpx.Client, channel: grpc.Channel) -> None:
    owner, other = new_account(http), new_account(http)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    as_owner = (("authorization", owner.bearer["Authorization"]),)
    created = stub.CreateAgent(agent_pb2.CreateAgentRequest(name="g", system_prompt="p"), metadata=as_owner)
    assert created.owner_id == owner.user_id and created.model == "auto"

    # Only the given optional fields change.
    updated = stub.UpdateAgent(agent_pb2.UpdateAgentRequest(agent_id=created.id, is_public=True), metadata=as_owner)
    assert updated.is_public and updated.name == "g"

    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteAgent(
            agent_pb2.DeleteAgentRequest(agent_id=created.id),
            metadata=(("authorization", other.bearer["Authorization"]),),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stub.GetAgent(agent_pb2.GetAgentRequest(agent_id=created.id)).name == "g"  # public, no credentials


def test_the_seed_python_client_creates_an_agent(http: httpx.Client) -> None:
    # FoyerGPTAPI.create_agent from the document, against this server.
    owner = new_account(http)
    session = httpx.Client(base_url=str(http.base_url), headers=owner.bearer)
    response = session.post(
        "/api/agents",
        json={"name": "Assistant Python", "system_prompt": "Tu es un expert Python", "model": "mistral-medium"},
    )
    response.raise_for_status()
    assert response.json()["model"] == "mistral-medium"
    session.close()
