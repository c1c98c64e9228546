"""Built-in roles and permissions, and the first administrator.

There is no default account: the first admin comes from RELAIS_ADMIN_EMAIL and
RELAIS_ADMIN_PASSWORD at start, or from `relais admin create`.
"""

from __future__ import annotations

import logging

from server.identity import repository
from server.identity.models import Permission, Role
from server.identity.service import IdentityService, NewAccount
from server.storage import Database

log = logging.getLogger("relais.identity")

# name → description. "*" grants everything; the admin role holds it.
BUILTIN_PERMISSIONS = {
    "*": "Every permission",
    "users:read": "List and read user accounts",
    "users:write": "Activate and deactivate user accounts",
    "users:delete": "Delete user accounts",
    "roles:read": "List and read roles",
    "roles:write": "Create, change and delete roles",
    "roles:assign": "Give roles to users and take them away",
    "permissions:read": "List permissions",
    "permissions:write": "Declare permissions",
    "sessions:read": "See every user's sessions",
    "sessions:write": "End any user's session",
    "corpus:write": "Index the local assistant's corpus directory",
    # tools:<name> grants one tool; tools:* every tool that is not administrators' only.
    "tools:*": "Use every tool that is not administrators' only",
    "tool_sources:read": "See the MCP servers tools come from",
    "tool_sources:write": "Reconnect the MCP servers tools come from",
    "tasks:read": "See every user's scheduled tasks and the built-in ones",
    "tasks:write": "Create, change, run, pause and delete anyone's scheduled tasks",
}
BUILTIN_ROLES = {
    "admin": ("Administrator: every permission", ["*"]),
    "user": ("Signed-in user", ["tools:*"]),
}


async def seed(database: Database) -> None:
    """Create the built-in permissions and roles that are missing (idempotent)."""
    async with database.sessions() as session, session.begin():
        existing = {p.name: p for p in await repository.all_permissions(session)}
        for name, description in BUILTIN_PERMISSIONS.items():
            if name not in existing:
                resource, _, action = name.partition(":")
                existing[name] = Permission(name=name, description=description, resource=resource, action=action or "*")
                session.add(existing[name])
        for name, (description, permissions) in BUILTIN_ROLES.items():
            if await repository.get_role_by_name(session, name) is None:
                session.add(
                    Role(
                        name=name, description=description, builtin=True, permissions=[existing[p] for p in permissions]
                    )
                )


async def ensure_admin(identity: IdentityService, database: Database, *, email: str, password: str) -> bool:
    """Create the administrator account unless an account with that email exists."""
    async with database.sessions() as session:
        if await repository.get_user_by_login(session, email) is not None:
            return False
    view = await identity.register(
        NewAccount(email=email, password=password, full_name="Administrator"), roles=("admin",), self_service=False
    )
    log.info("administrator account created user_id=%d", view.id)
    return True
