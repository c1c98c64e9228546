"""Profiles, administration of users and roles, sessions and API keys."""

from __future__ import annotations

import httpx

from tests.identity.helpers import PASSWORD, admin, login, new_account, unique_email


def test_profile_read_update_and_password_change(http: httpx.Client) -> None:
    account = new_account(http)
    other_session = login(http, account.email)

    profile = http.get("/user/profile", headers=account.bearer).json()
    updated = http.put(
        "/user/profile", headers=account.bearer, json={"name": "Renamed", "username": "renamed_" + account.email[5:15]}
    )
    weak = http.put(
        "/user/password", headers=account.bearer, json={"current_password": PASSWORD, "new_password": "weak"}
    )
    wrong = http.put(
        "/user/password",
        headers=account.bearer,
        json={"current_password": "nope-1234", "new_password": "another-pass-9"},
    )
    changed = http.put(
        "/user/password", headers=account.bearer, json={"current_password": PASSWORD, "new_password": "another-pass-9"}
    )

    assert profile["email"] == account.email
    assert updated.status_code == 200 and updated.json()["full_name"] == "Renamed"
    assert weak.status_code == 422 and weak.json()["error"]["details"][0]["field"] == "new_password"
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "current_password"
    assert changed.status_code == 200 and changed.json()["sessions_revoked"] == 1
    # This session lives on; the other one was signed out; only the new password works.
    assert http.get("/auth/me", headers=account.bearer).status_code == 200
    assert http.get("/auth/me", headers={"Authorization": f"Bearer {other_session['access_token']}"}).status_code == 401
    assert http.post("/auth/login", json={"email": account.email, "password": PASSWORD}).status_code == 401
    assert login(http, account.email, "another-pass-9")["access_token"]


def test_profile_email_conflict_is_409(http: httpx.Client) -> None:
    first, second = new_account(http), new_account(http)

    response = http.put("/user/profile", headers=second.bearer, json={"email": first.email})

    assert response.status_code == 409


def test_admin_lists_users_with_filters_sorting_and_pages(http: httpx.Client) -> None:
    root = admin(http)
    marker = unique_email("zzfilter").split("@")[0]
    for index in range(3):
        http.post("/auth/register", json={"email": f"{marker}-{index}@example.com", "password": PASSWORD})

    page = http.get(
        "/admin/users",
        headers=root.bearer,
        params={"search": marker, "limit": 2, "sort_by": "email", "sort_order": "asc"},
    )
    rest = http.get(
        "/admin/users",
        headers=root.bearer,
        params={"search": marker, "offset": 2, "limit": 2, "sort_by": "email", "sort_order": "asc"},
    )
    inactive = http.get("/admin/users", headers=root.bearer, params={"search": marker, "is_active": "false"})
    capped = http.get("/admin/users", headers=root.bearer, params={"limit": 1000})
    bad_sort = http.get("/admin/users", headers=root.bearer, params={"sort_by": "password_hash"})

    body = page.json()
    assert body["total"] == 3 and body["skip"] == 0 and body["limit"] == 2 and body["has_more"] is True
    assert [u["email"] for u in body["items"]] == [f"{marker}-0@example.com", f"{marker}-1@example.com"]
    assert [u["email"] for u in rest.json()["items"]] == [f"{marker}-2@example.com"] and rest.json()[
        "has_more"
    ] is False
    assert inactive.json()["total"] == 0
    assert capped.json()["limit"] == 100
    assert bad_sort.status_code == 422


def test_admin_reads_changes_roles_deactivates_and_deletes_a_user(http: httpx.Client) -> None:
    root = admin(http)
    target = new_account(http)
    roles = {r["name"]: r["id"] for r in http.get("/admin/roles", headers=root.bearer).json()["items"]}

    detail = http.get(f"/admin/users/{target.user_id}", headers=root.bearer)
    promoted = http.put(f"/admin/users/{target.user_id}/role", headers=root.bearer, json={"role": "admin"})
    assigned = http.post(f"/admin/users/{target.user_id}/roles/{roles['user']}", headers=root.bearer)
    removed = http.delete(f"/admin/users/{target.user_id}/roles/{roles['admin']}", headers=root.bearer)
    deactivated = http.post(f"/admin/users/{target.user_id}/deactivate", headers=root.bearer)
    signed_out = http.get("/auth/me", headers=target.bearer)
    blocked = http.post("/auth/login", json={"email": target.email, "password": PASSWORD})
    activated = http.post(f"/admin/users/{target.user_id}/activate", headers=root.bearer)
    deleted = http.delete(f"/admin/users/{target.user_id}", headers=root.bearer)
    gone = http.get(f"/admin/users/{target.user_id}", headers=root.bearer)

    assert detail.status_code == 200 and detail.json()["email"] == target.email
    assert promoted.json()["roles"] == ["admin"] and promoted.json()["is_admin"] is True
    assert assigned.json() == {"message": "Rôle assigné avec succès"}
    assert removed.status_code == 204
    assert deactivated.json() == {"id": target.user_id, "is_active": False}
    assert signed_out.status_code == 401 and blocked.status_code == 403
    assert activated.json() == {"id": target.user_id, "is_active": True}
    assert deleted.status_code == 204 and gone.status_code == 404


def test_admin_cannot_remove_themselves(http: httpx.Client) -> None:
    root = admin(http)

    assert http.delete(f"/admin/users/{root.user_id}", headers=root.bearer).status_code == 409
    assert http.post(f"/admin/users/{root.user_id}/deactivate", headers=root.bearer).status_code == 409


def test_roles_and_permissions_administration(http: httpx.Client) -> None:
    root = admin(http)
    name = "manager-" + unique_email()[5:11]

    permission = http.post(
        "/admin/permissions",
        headers=root.bearer,
        json={"name": f"reports{name[-4:]}:generate", "description": "Générer"},
    )
    created = http.post(
        "/admin/roles",
        headers=root.bearer,
        json={"name": name, "description": "Gestionnaire", "permissions": ["users:read"]},
    )
    role_id = created.json()["id"]
    duplicate = http.post("/admin/roles", headers=root.bearer, json={"name": name})
    unknown = http.post("/admin/roles", headers=root.bearer, json={"name": name + "x", "permissions": ["nope:nope"]})
    updated = http.put(
        f"/admin/roles/{role_id}",
        headers=root.bearer,
        json={"description": "Super", "permissions": [permission.json()["name"]]},
    )
    detail = http.get(f"/admin/roles/{role_id}", headers=root.bearer)
    listing = http.get("/admin/permissions", headers=root.bearer)
    builtin = next(r for r in http.get("/admin/roles", headers=root.bearer).json()["items"] if r["name"] == "admin")
    refuse = http.delete(f"/admin/roles/{builtin['id']}", headers=root.bearer)
    deleted = http.delete(f"/admin/roles/{role_id}", headers=root.bearer)

    assert permission.status_code == 201 and permission.json()["action"] == "generate"
    assert created.status_code == 201 and [p["name"] for p in created.json()["permissions"]] == ["users:read"]
    assert duplicate.status_code == 409 and unknown.status_code == 422
    assert updated.json()["description"] == "Super"
    assert [p["name"] for p in detail.json()["permissions"]] == [permission.json()["name"]]
    assert detail.json()["users_count"] == 0
    assert listing.json()["total"] >= 12 and "users:read" in {p["name"] for p in listing.json()["items"]}
    assert refuse.status_code == 409 and deleted.status_code == 204
    assert http.get(f"/admin/roles/{role_id}", headers=root.bearer).status_code == 404


def test_a_custom_role_grants_exactly_its_permissions(http: httpx.Client) -> None:
    root = admin(http)
    name = "reader-" + unique_email()[5:11]
    role = http.post("/admin/roles", headers=root.bearer, json={"name": name, "permissions": ["users:read"]}).json()
    reader = new_account(http)
    http.post(f"/admin/users/{reader.user_id}/roles/{role['id']}", headers=root.bearer)

    allowed = http.get("/admin/users", headers=reader.bearer)
    denied = http.get("/admin/roles", headers=reader.bearer)

    assert allowed.status_code == 200 and denied.status_code == 403


def test_sessions_are_listed_ended_and_looked_up(http: httpx.Client) -> None:
    account = new_account(http)
    second = login(http, account.email)
    stranger = new_account(http)

    listing = http.get("/sessions", headers=account.bearer).json()["sessions"]
    current = http.get("/api/sessions/current", headers=account.bearer)
    named = http.get("/api/sessions/current", headers={**account.bearer, "X-Session-ID": second["session_id"]})
    foreign = http.get("/api/sessions/current", headers={**stranger.bearer, "X-Session-ID": second["session_id"]})
    ended = http.post(f"/sessions/{second['session_id']}/terminate", headers=account.bearer)
    replay = http.get("/auth/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    not_yours = http.post(f"/sessions/{account.tokens['session_id']}/terminate", headers=stranger.bearer)

    assert {s["id"] for s in listing} == {account.tokens["session_id"], second["session_id"]}
    assert set(listing[0]) >= {"id", "client", "start_ts", "last_activity", "active"} and listing[0]["active"] is True
    assert current.json()["id"] == account.tokens["session_id"] and current.json()["user_id"] == account.user_id
    assert (
        current.json()["metadata"]["ip_address"] == "127.0.0.1"
        and "python-httpx" in current.json()["metadata"]["user_agent"]
    )
    assert named.json()["id"] == second["session_id"] and foreign.status_code == 404
    assert ended.json() == {"id": second["session_id"], "active": False}
    assert replay.status_code == 401 and not_yours.status_code == 404


def test_api_keys_are_created_used_scoped_and_revoked(http: httpx.Client) -> None:
    root = admin(http)

    created = http.post(
        "/api/keys", headers=root.bearer, json={"name": "ci", "scopes": ["users:read"], "expires_in_days": 30}
    )
    key = created.json()["key"]
    by_key = {"X-API-Key": key}
    listing = http.get("/api/keys", headers=root.bearer).json()
    reading = http.get("/admin/users", headers=by_key)
    beyond_scope = http.get("/admin/roles", headers=by_key)
    me = http.get("/auth/me", headers=by_key)
    revoked = http.delete(f"/api/keys/{created.json()['api_key']['id']}", headers=root.bearer)
    after = http.get("/admin/users", headers=by_key)

    assert created.status_code == 201 and key.startswith("rls_")
    assert created.json()["api_key"]["prefix"] == key[:10] and created.json()["api_key"]["expires_at"]
    assert key not in str(listing) and listing["total"] >= 1
    assert reading.status_code == 200 and beyond_scope.status_code == 403 and me.status_code == 200
    assert revoked.status_code == 204 and after.status_code == 401


def test_a_scoped_key_cannot_mint_a_wider_key(http: httpx.Client) -> None:
    root = admin(http)
    scoped = http.post("/api/keys", headers=root.bearer, json={"name": "narrow", "scopes": ["users:read"]}).json()
    by_scoped = {"X-API-Key": scoped["key"]}

    unscoped = http.post("/api/keys", headers=by_scoped, json={"name": "wide"})
    wider = http.post("/api/keys", headers=by_scoped, json={"name": "wider", "scopes": ["roles:read"]})
    minted = {"X-API-Key": unscoped.json()["key"]}

    assert unscoped.status_code == 201 and unscoped.json()["api_key"]["scopes"] == ["users:read"]
    assert wider.status_code == 403
    assert http.get("/admin/roles", headers=minted).status_code == 403
    assert http.get("/admin/users", headers=minted).status_code == 200


def test_a_key_cannot_widen_its_owners_rights(http: httpx.Client) -> None:
    account = new_account(http)

    response = http.post("/api/keys", headers=account.bearer, json={"name": "sneaky", "scopes": ["users:delete"]})

    assert response.status_code == 403


def test_a_username_cannot_squat_another_accounts_email(http: httpx.Client) -> None:
    squatter = new_account(http)
    victim_email = unique_email("victim")
    taken = new_account(http)

    squat = http.put("/user/profile", headers=squatter.bearer, json={"username": victim_email})
    someone_elses = http.put("/user/profile", headers=squatter.bearer, json={"username": taken.email})
    own = http.put("/user/profile", headers=squatter.bearer, json={"username": squatter.email})
    registered = http.post("/auth/register", json={"email": victim_email, "password": PASSWORD})

    assert squat.status_code in (400, 422) and "username" in squat.text
    assert someone_elses.status_code in (400, 409, 422)
    assert own.status_code == 200, own.text
    assert registered.status_code == 201
    assert login(http, victim_email)["user"]["email"] == victim_email
