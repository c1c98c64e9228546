"""Issue 13: messages people read come in the caller's Accept-Language: the documents' French
texts verbatim by default (their examples send no Accept-Language), English on request; over
HTTP and gRPC metadata."""

from __future__ import annotations

import grpc
import httpx
from relais.v1 import auth_pb2, auth_pb2_grpc

from server.messages import preferred_language
from tests.identity.helpers import admin, new_account


def test_the_documents_logout_example_gets_its_french_message(http: httpx.Client) -> None:
    # FoyerGPT: POST /api/auth/logout with `Authorization: Bearer <token>`.
    account = new_account(http)
    response = http.post("/api/auth/logout", headers=account.bearer)

    assert response.status_code == 200 and response.json()["message"] == "Déconnexion réussie"


def test_an_english_reader_gets_english(http: httpx.Client) -> None:
    account = new_account(http)
    english = {**account.bearer, "Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}

    response = http.post("/api/auth/logout", headers=english)

    assert response.json()["message"] == "Signed out"


def test_role_assignment_speaks_both_languages(http: httpx.Client) -> None:
    root, target = admin(http), new_account(http)
    roles = {r["name"]: r["id"] for r in http.get("/admin/roles", headers=root.bearer).json()["items"]}
    url = f"/admin/users/{target.user_id}/roles/{roles['user']}"

    french = http.post(url, headers={**root.bearer, "Accept-Language": "fr-CA"})
    english = http.post(url, headers={**root.bearer, "Accept-Language": "en"})

    assert french.json() == {"message": "Rôle assigné avec succès"}
    assert english.json() == {"message": "Role assigned successfully"}


def test_grpc_callers_choose_with_metadata(http: httpx.Client, channel: grpc.Channel) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    tokens = [new_account(http).tokens["access_token"] for _ in range(2)]

    english = stub.Logout(
        auth_pb2.LogoutRequest(), metadata=[("authorization", f"Bearer {tokens[0]}"), ("accept-language", "en")]
    )
    default = stub.Logout(auth_pb2.LogoutRequest(), metadata=[("authorization", f"Bearer {tokens[1]}")])

    assert (english.message, default.message) == ("Signed out", "Déconnexion réussie")


def test_the_preferred_language_follows_the_weights() -> None:
    assert preferred_language("") == "fr"
    assert preferred_language("en-US,en;q=0.9") == "en"
    assert preferred_language("de-DE, en;q=0.3, fr;q=0.7") == "fr"
    assert preferred_language("de-DE, ja") == "fr"
    assert preferred_language("en;q=0, fr;q=0.1") == "fr"
    assert preferred_language("*") == "fr"
