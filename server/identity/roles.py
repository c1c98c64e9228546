"""Roles and permissions administration."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import asc
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Principal
from server.errors import (
    AlreadyExists,
    FieldViolation,
    NotFound,
    PermissionDenied,
    StateConflict,
    ValidationFailed,
)
from server.identity import repository
from server.identity.models import Permission, Role
from server.identity.values import PermissionView, RoleView
from server.paging import Page, page_window
from server.storage import Database
from server.storage.queries import page_of

_ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PERMISSION_NAME = re.compile(r"^([a-z0-9_*-]{1,64}):([a-z0-9_*-]{1,64})$")


def ensure_may_grant(principal: Principal, *, permissions: Iterable[str], role_name: str | None = None) -> None:
    """Delegated role management never escalates: nobody grants a permission they do not hold themselves,
    and only administrators (callers holding "*", which a scoped key of an admin does not) grant "*" or the
    admin role."""
    if "*" in principal.permissions:
        return
    wanted = {name.strip().lower() for name in permissions}
    if role_name == "admin" or "*" in wanted:
        raise PermissionDenied("Only administrators grant the admin role or the '*' permission")
    beyond = sorted(name for name in wanted if not principal.can(name))
    if beyond:
        raise PermissionDenied(f"You cannot grant permissions you do not hold: {', '.join(beyond)}")


class RoleAdministration:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def list_roles(self, *, skip: int, offset: int, limit: int) -> Page[RoleView]:
        skip, limit = page_window(skip=skip, offset=offset, limit=limit)
        statement = repository.roles()
        async with self._database.sessions() as session:
            page = await page_of(session, statement.order_by(asc(Role.id)), skip=skip, limit=limit)
            counts = await repository.role_user_counts(session, [role.id for role in page.items])
            return page.map(lambda role: RoleView.of(role, users_count=counts.get(role.id, 0)))

    async def get_role(self, role_id: int) -> RoleView:
        async with self._database.sessions() as session:
            role = await repository.get_role(session, role_id)
            if role is None:
                raise NotFound(f"No role {role_id}")
            counts = await repository.role_user_counts(session, [role_id])
            return RoleView.of(role, users_count=counts.get(role_id, 0))

    async def create_role(
        self, principal: Principal, *, name: str, description: str, permissions: list[str]
    ) -> RoleView:
        name = name.strip().lower()
        ensure_may_grant(principal, permissions=permissions)
        violations = self._role_violations(name, description)
        if violations:
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            if await repository.get_role_by_name(session, name) is not None:
                raise AlreadyExists(f"Role {name!r} already exists")
            role = Role(name=name, description=description.strip(), builtin=False)
            role.permissions = await self._permissions(session, permissions)
            session.add(role)
            with repository.unique_violations(f"Role {name!r} already exists"):
                await session.flush()
            return RoleView.of(role, users_count=0)

    async def update_role(
        self,
        principal: Principal,
        role_id: int,
        *,
        name: str | None,
        description: str | None,
        permissions: list[str] | None,
    ) -> RoleView:
        async with self._database.sessions() as session, session.begin():
            role = await repository.get_role(session, role_id)
            if role is None:
                raise NotFound(f"No role {role_id}")
            if name is not None:
                name = name.strip().lower()
                if role.builtin and name != role.name:
                    raise StateConflict(f"The built-in role {role.name!r} cannot be renamed")
            violations = self._role_violations(name if name is not None else role.name, description or "")
            if violations:
                raise ValidationFailed(violations)
            if name is not None and name != role.name:
                if await repository.get_role_by_name(session, name) is not None:
                    raise AlreadyExists(f"Role {name!r} already exists")
                role.name = name
            if description is not None:
                role.description = description.strip()
            if permissions is not None:
                if role.name == "admin":
                    raise StateConflict("The admin role always holds every permission")
                ensure_may_grant(principal, permissions=permissions)
                role.permissions = await self._permissions(session, permissions)
            with repository.unique_violations("Role name already in use"):
                await session.flush()
            counts = await repository.role_user_counts(session, [role_id])
            return RoleView.of(role, users_count=counts.get(role_id, 0))

    async def delete_role(self, role_id: int) -> None:
        async with self._database.sessions() as session, session.begin():
            role = await repository.get_role(session, role_id)
            if role is None:
                raise NotFound(f"No role {role_id}")
            if role.builtin:
                raise StateConflict(f"The built-in role {role.name!r} cannot be deleted")
            await session.delete(role)

    async def list_permissions(self, *, skip: int, offset: int, limit: int) -> Page[PermissionView]:
        skip, limit = page_window(skip=skip, offset=offset, limit=limit, default=100)
        statement = repository.permissions()
        async with self._database.sessions() as session:
            page = await page_of(session, statement.order_by(asc(Permission.name)), skip=skip, limit=limit)
            return page.map(PermissionView.of)

    async def create_permission(self, *, name: str, description: str, resource: str, action: str) -> PermissionView:
        name = name.strip().lower()
        found = _PERMISSION_NAME.match(name)
        violations = []
        if not found:
            violations.append(FieldViolation(field="name", message="must be 'resource:action' (lowercase)"))
        if len(description) > 512:
            violations.append(FieldViolation(field="description", message="must be at most 512 characters"))
        if violations or found is None:
            raise ValidationFailed(violations)
        permission = Permission(
            name=name,
            description=description.strip(),
            resource=resource.strip() or found.group(1),
            action=action.strip() or found.group(2),
        )
        async with self._database.sessions() as session, session.begin():
            if await repository.permissions_by_name(session, [name]):
                raise AlreadyExists(f"Permission {name!r} already exists")
            session.add(permission)
            with repository.unique_violations(f"Permission {name!r} already exists"):
                await session.flush()
            return PermissionView.of(permission)

    @staticmethod
    def _role_violations(name: str, description: str) -> list[FieldViolation]:
        violations = []
        if not _ROLE_NAME.match(name):
            violations.append(FieldViolation(field="name", message="must be 1 to 64 lowercase letters, digits, _ or -"))
        if len(description) > 512:
            violations.append(FieldViolation(field="description", message="must be at most 512 characters"))
        return violations

    @staticmethod
    async def _permissions(session: AsyncSession, names: list[str]) -> list[Permission]:
        wanted = sorted({name.strip().lower() for name in names})
        found = await repository.permissions_by_name(session, wanted)
        missing = sorted(set(wanted) - {permission.name for permission in found})
        if missing:
            raise ValidationFailed(
                [FieldViolation(field="permissions", message=f"unknown permission {name!r}") for name in missing]
            )
        return found
