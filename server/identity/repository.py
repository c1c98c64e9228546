"""SQLAlchemy queries of the identity domain. Returns ORM rows; never commits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, delete, desc, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from server.errors import AlreadyExists
from server.identity.models import ApiKey, AuthSession, Permission, Role, User, user_roles


@contextlib.contextmanager
def unique_violations(message: str) -> Iterator[None]:
    """Turn a unique-constraint race into AlreadyExists (checks before insert catch the rest)."""
    try:
        yield
    except IntegrityError as error:
        raise AlreadyExists(message) from error


# One user with its roles and their permissions in one statement: the relationships' own loading
# (selectin, right for pages of users) takes three round trips, on every sign-in and authentication.
WITH_ROLES = (joinedload(User.roles).joinedload(Role.permissions),)


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id, options=WITH_ROLES)


async def get_user_by_login(session: AsyncSession, login: str) -> User | None:
    """The user whose email or username is `login` (case-insensitive)."""
    login = login.strip().lower()
    statement = select(User).where(or_(func.lower(User.email) == login, func.lower(User.username) == login))
    # The lowest id when an email and another's username coincide; LIMIT would cut the joined rows.
    users = (await session.scalars(statement.options(*WITH_ROLES).order_by(User.id))).unique().all()
    return users[0] if users else None


async def record_sign_in(session: AsyncSession, user_id: int, *, at: datetime, password_hash: str | None) -> bool:
    """Stamp a sign-in on an account that is still active (and store its rehashed password);
    False when it was deactivated or deleted meanwhile."""
    values: dict[str, object] = {"last_login": at}
    if password_hash is not None:
        values["password_hash"] = password_hash
    statement = update(User).where(User.id == user_id, User.is_active.is_(True)).values(**values)
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def find_conflicts(
    session: AsyncSession, *, email: str | None, username: str | None, trigramme: str | None, exclude_id: int | None
) -> list[str]:
    """Names of the unique fields another user already holds."""
    taken = []
    # Emails and usernames share one case-insensitive namespace (either signs in, so neither may equal
    # another account's email or username); trigrammes are stored upper-case.
    for name, value in (
        ("email", email.lower() if email is not None else None),
        ("username", username.lower() if username is not None else None),
        ("trigramme", trigramme),
    ):
        if value is None:
            continue
        condition = (
            User.trigramme == value
            if name == "trigramme"
            else or_(func.lower(User.email) == value, func.lower(User.username) == value)
        )
        statement = select(User.id).where(condition)
        if exclude_id is not None:
            statement = statement.where(User.id != exclude_id)
        if await session.scalar(statement.limit(1)) is not None:
            taken.append(name)
    return taken


def users_query(*, search: str, is_active: bool | None) -> Select[tuple[User]]:
    statement = select(User)
    if search:
        # % and _ are the caller's characters, not wildcards.
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        statement = statement.where(
            or_(
                func.lower(User.email).like(pattern, escape="\\"),
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(User.full_name).like(pattern, escape="\\"),
                func.lower(func.coalesce(User.trigramme, "")).like(pattern, escape="\\"),
            )
        )
    if is_active is not None:
        statement = statement.where(User.is_active == is_active)
    return statement


async def get_role(session: AsyncSession, role_id: int) -> Role | None:
    return await session.get(Role, role_id)


async def get_role_by_name(session: AsyncSession, name: str) -> Role | None:
    return (await session.scalars(select(Role).where(Role.name == name))).first()


async def role_user_counts(session: AsyncSession, role_ids: list[int]) -> dict[int, int]:
    if not role_ids:
        return {}
    statement = (
        select(user_roles.c.role_id, func.count())
        .where(user_roles.c.role_id.in_(role_ids))
        .group_by(user_roles.c.role_id)
    )
    return {int(role_id): int(total) for role_id, total in (await session.execute(statement)).all()}


async def permissions_by_name(session: AsyncSession, names: list[str]) -> list[Permission]:
    if not names:
        return []
    return list(await session.scalars(select(Permission).where(Permission.name.in_(names))))


async def get_session(session: AsyncSession, session_id: str) -> AuthSession | None:
    return await session.get(AuthSession, session_id)


async def revoke_sessions(session: AsyncSession, user_id: int, now: datetime, *, keep: str | None = None) -> int:
    statement = select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    rows = list(await session.scalars(statement))
    for row in rows:
        row.revoked_at = now
    return len(rows)


async def get_api_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    return (await session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash))).first()


async def delete_user(session: AsyncSession, user_id: int) -> None:
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON,
    # and association rows must go on every engine.
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    await session.execute(delete(ApiKey).where(ApiKey.user_id == user_id))
    await session.execute(delete(user_roles).where(user_roles.c.user_id == user_id))
    await session.execute(delete(User).where(User.id == user_id))
    # Bulk statements bypass the ORM's change tracking that empties the principal caches.
    session.info["relais.identity_changed"] = True


def api_keys(owner_id: int, *, include_revoked: bool) -> Select[tuple[ApiKey]]:
    """An owner's API keys, newest first (the revoked ones only when asked)."""
    statement = select(ApiKey).where(ApiKey.user_id == owner_id).order_by(desc(ApiKey.created_at))
    return statement if include_revoked else statement.where(ApiKey.revoked_at.is_(None))


async def active_api_key_count(session: AsyncSession, owner_id: int) -> int:
    active = select(func.count()).select_from(ApiKey).where(ApiKey.user_id == owner_id, ApiKey.revoked_at.is_(None))
    return int(await session.scalar(active) or 0)


def auth_sessions(*, user_id: int | None, live_at: datetime | None, limit: int) -> Select[tuple[AuthSession]]:
    """Sessions newest first: one user's (None: everyone's), only the live ones at `live_at` (None: all)."""
    statement = select(AuthSession).order_by(desc(AuthSession.created_at)).limit(limit)
    if user_id is not None:
        statement = statement.where(AuthSession.user_id == user_id)
    if live_at is not None:
        statement = statement.where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > live_at)
    return statement


def roles() -> Select[tuple[Role]]:
    return select(Role)


def permissions() -> Select[tuple[Permission]]:
    return select(Permission)


async def all_permissions(session: AsyncSession) -> list[Permission]:
    return list(await session.scalars(permissions()))
