"""Delegated role management never escalates (issue 12 item 5)."""

from __future__ import annotations

import uuid

import httpx

from tests.identity.helpers import admin, login, new_account


def _role(http: httpx.Client, headers: dict[str, str], permissions: list[str]) -> httpx.Response:
    name = f"r-{uuid.uuid4().hex[:8]}"
    return http.post("/admin/roles", headers=headers, json={"name": name, "permissions": permissions})


def test_a_delegate_cannot_grant_what_it_does_not_hold(http: httpx.Client) -> None:
    root = admin(http)
    delegate_role = _role(http, root.bearer, ["roles:write", "roles:assign", "roles:read"]).json()
    delegate = new_account(http)
    assigned = http.post(f"/admin/users/{delegate.user_id}/roles/{delegate_role['id']}", headers=root.bearer)
    bearer = {"Authorization": f"Bearer {login(http, delegate.email)['access_token']}"}
    roles = http.get("/admin/roles", headers=root.bearer, params={"limit": 100}).json()["items"]
    admin_role = next(role for role in roles if role["name"] == "admin")
    victim = new_account(http)

    star = _role(http, bearer, ["*"])
    beyond = _role(http, bearer, ["users:delete"])
    within = _role(http, bearer, ["roles:read"])
    widened = http.put(f"/admin/roles/{within.json()['id']}", headers=bearer, json={"permissions": ["users:delete"]})
    to_admin = http.post(f"/admin/users/{victim.user_id}/roles/{admin_role['id']}", headers=bearer)
    self_admin = http.put(f"/admin/users/{delegate.user_id}/role", headers=bearer, json={"role": "admin"})
    allowed = http.post(f"/admin/users/{victim.user_id}/roles/{within.json()['id']}", headers=bearer)

    assert assigned.status_code in (200, 201, 204), assigned.text
    assert star.status_code == 403 and beyond.status_code == 403
    assert within.status_code in (200, 201) and widened.status_code == 403
    assert to_admin.status_code == 403, to_admin.text
    assert self_admin.status_code == 403, self_admin.text
    assert allowed.status_code in (200, 201, 204), allowed.text
    assert _role(http, root.bearer, ["*"]).status_code in (200, 201)
