"""Accounts: registration, one's own profile and password, and the administration of every user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import asc, desc
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth import Principal
from server.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    NotFound,
    PermissionDenied,
    StateConflict,
    Unauthenticated,
    ValidationFailed,
)
from server.identity import passwords, repository
from server.identity.core import IdentityCore, log, user_id_of
from server.identity.models import Role, User
from server.identity.roles import ensure_may_grant
from server.identity.values import (
    UserView,
    normalise_email,
    normalise_name,
    normalise_trigramme,
    normalise_username,
    now,
)
from server.paging import Page, page_window
from server.storage.queries import page_of

USER_SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "full_name": User.full_name,
    "last_login": User.last_login,
    "id": User.id,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAccount:
    email: str
    password: str
    full_name: str = ""
    trigramme: str = ""
    username: str = ""


class Accounts(IdentityCore):
    """Registration, profile and password; listing, reading, deleting, (de)activating users and
    giving them roles."""

    async def register(
        self, account: NewAccount, *, roles: tuple[str, ...] = ("user",), self_service: bool = True
    ) -> UserView:
        if self_service and not self._allow_registration:
            raise PermissionDenied("Registration is closed on this server")
        violations: list[FieldViolation] = []
        email = normalise_email(account.email, violations)
        username = normalise_username(account.username or email, violations, own_email=email)
        trigramme = normalise_trigramme(account.trigramme, violations)
        full_name = normalise_name(account.full_name, violations)
        violations += passwords.password_violations(account.password, email=email)
        if violations:
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            await _refuse_conflicts(session, email=email, username=username, trigramme=trigramme, exclude_id=None)
            user = User(
                email=email,
                username=username,
                full_name=full_name,
                trigramme=trigramme,
                password_hash=await passwords.hash_password(account.password),
                is_active=True,
            )
            for name in roles:
                role = await repository.get_role_by_name(session, name)
                if role is None:
                    raise FailedPrecondition(f"Role {name!r} does not exist")
                user.roles.append(role)
            session.add(user)
            with repository.unique_violations("An account with this email, username or trigramme exists"):
                await session.flush()
            view = UserView.of(user)
        log.info("account created user_id=%d", view.id)
        return view

    async def get_profile(self, principal: Principal) -> UserView:
        async with self._database.sessions() as session:
            user = await repository.get_user(session, user_id_of(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            return UserView.of(user)

    async def update_profile(
        self,
        principal: Principal,
        *,
        email: str | None,
        full_name: str | None,
        trigramme: str | None,
        username: str | None,
    ) -> UserView:
        violations: list[FieldViolation] = []
        email = normalise_email(email, violations) if email is not None else None
        username = normalise_username(username, violations) if username is not None else None
        trigramme_value = normalise_trigramme(trigramme, violations) if trigramme is not None else None
        full_name = normalise_name(full_name, violations) if full_name is not None else None
        if violations:
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user_id_of(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            if username is not None:
                normalise_username(username, violations, own_email=email or user.email)
                if violations:
                    raise ValidationFailed(violations)
            await _refuse_conflicts(
                session, email=email, username=username, trigramme=trigramme_value, exclude_id=user.id
            )
            if email is not None:
                user.email = email
            if username is not None:
                user.username = username
            if trigramme is not None:
                user.trigramme = trigramme_value
            if full_name is not None:
                user.full_name = full_name
            with repository.unique_violations("Email, username or trigramme already in use"):
                await session.flush()
            return UserView.of(user)

    async def change_password(self, principal: Principal, *, current: str, new: str) -> int:
        """Returns the number of other sessions signed out."""
        async with self._database.sessions() as session, session.begin():
            user = await repository.get_user(session, user_id_of(principal))
            if user is None:
                raise Unauthenticated("Account no longer exists")
            if not await passwords.verify_password(user.password_hash, current):
                raise ValidationFailed([FieldViolation(field="current_password", message="is incorrect")])
            violations = passwords.password_violations(new, field="new_password", email=user.email)
            if new == current:
                violations.append(FieldViolation(field="new_password", message="must differ from the current one"))
            if violations:
                raise ValidationFailed(violations)
            user.password_hash = await passwords.hash_password(new)
            revoked = await repository.revoke_sessions(session, user.id, now(), keep=principal.session_id)
        log.info("password changed user_id=%d sessions_revoked=%d", user.id, revoked)
        await self._sessions_ended(user.id, except_session_id=principal.session_id, reason="password_changed")
        return revoked

    # ------------------------------------------------------------ administration

    async def list_users(
        self, *, skip: int, offset: int, limit: int, search: str, is_active: bool | None, sort_by: str, descending: bool
    ) -> Page[UserView]:
        skip, limit = page_window(skip=skip, offset=offset, limit=limit)
        column = USER_SORT_COLUMNS.get(sort_by or "created_at")
        if column is None:
            raise ValidationFailed(
                [FieldViolation(field="sort_by", message=f"must be one of {', '.join(USER_SORT_COLUMNS)}")]
            )
        statement = repository.users_query(search=search.strip(), is_active=is_active)
        order = desc(column) if descending else asc(column)
        async with self._database.sessions() as session:
            page = await page_of(session, statement.order_by(order, asc(User.id)), skip=skip, limit=limit)
        return page.map(UserView.of)

    async def get_user(self, user_id: int) -> UserView:
        async with self._database.sessions() as session:
            return UserView.of(await _existing_user(session, user_id))

    async def delete_user(self, principal: Principal, user_id: int) -> None:
        if user_id == principal.user_id:
            raise StateConflict("You cannot delete your own account here")
        async with self._database.sessions() as session, session.begin():
            await _existing_user(session, user_id)
            for hook in self.user_deletion_hooks:
                await hook.before_user_deleted(session, user_id)
            await repository.delete_user(session, user_id)
        await self._sessions_ended(user_id, reason="deactivated")
        for hook in self.user_deletion_hooks:
            try:
                await hook.after_user_deleted(user_id)
            except Exception:  # The account is gone; what is left is retried by the hook's own owner.
                log.exception("after deleting user %d, a cleanup step failed", user_id)
        log.info("account deleted user_id=%d by=%s", user_id, principal.subject)

    async def set_user_role(self, principal: Principal, user_id: int, role_name: str) -> UserView:
        """Make `role_name` the user's only role."""
        async with self._database.sessions() as session, session.begin():
            user = await _existing_user(session, user_id)
            role = await repository.get_role_by_name(session, role_name.strip())
            if role is None:
                raise NotFound(f"No role named {role_name!r}")
            ensure_may_grant(principal, permissions=_names(role), role_name=role.name)
            user.roles = [role]
            await session.flush()
            return UserView.of(user)

    async def assign_role(self, principal: Principal, user_id: int, role_id: int) -> None:
        async with self._database.sessions() as session, session.begin():
            user, role = await _user_and_grantable_role(session, principal, user_id, role_id)
            if role not in user.roles:
                user.roles.append(role)

    async def remove_role(self, principal: Principal, user_id: int, role_id: int) -> None:
        async with self._database.sessions() as session, session.begin():
            user, role = await _user_and_grantable_role(session, principal, user_id, role_id)
            if role not in user.roles:
                raise NotFound(f"User {user_id} does not hold role {role_id}")
            user.roles.remove(role)

    async def activate_user(self, user_id: int) -> UserView:
        async with self._database.sessions() as session, session.begin():
            user = await _existing_user(session, user_id)
            user.is_active = True
            return UserView.of(user)

    async def deactivate_user(self, principal: Principal, user_id: int) -> UserView:
        """Deactivate the account and end its sessions."""
        if user_id == principal.user_id:
            raise StateConflict("You cannot deactivate your own account")
        async with self._database.sessions() as session, session.begin():
            user = await _existing_user(session, user_id)
            user.is_active = False
            await repository.revoke_sessions(session, user_id, now())
            view = UserView.of(user)
        await self._sessions_ended(user_id, reason="deactivated")
        return view


async def _refuse_conflicts(
    session: AsyncSession,
    *,
    email: str | None,
    username: str | None,
    trigramme: str | None,
    exclude_id: int | None,
) -> None:
    taken = await repository.find_conflicts(
        session, email=email, username=username, trigramme=trigramme, exclude_id=exclude_id
    )
    if taken:
        raise AlreadyExists(f"{', '.join(taken).capitalize()} already in use", metadata={"fields": ",".join(taken)})


async def _existing_user(session: AsyncSession, user_id: int) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}")
    return user


async def _user_and_grantable_role(
    session: AsyncSession, principal: Principal, user_id: int, role_id: int
) -> tuple[User, Role]:
    """The user and the role, once the caller is found allowed to grant (or take away) that role."""
    user = await _existing_user(session, user_id)
    role = await repository.get_role(session, role_id)
    if role is None:
        raise NotFound(f"No role {role_id}")
    ensure_may_grant(principal, permissions=_names(role), role_name=role.name)
    return user, role


def _names(role: Role) -> list[str]:
    return [permission.name for permission in role.permissions]
