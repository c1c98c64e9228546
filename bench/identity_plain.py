"""The peers' architecture for the identity benchmark: POST /auth/login, GET /auth/me and
GET /api/chats written by hand as a FastAPI app on SQLAlchemy (async, aiosqlite), argon2-cffi and
PyJWT.

It does the work Relais does for those routes, without the gRPC hop:

    POST /auth/login   find the user by email or username, verify the password (Argon2id,
                       `argon2.PasswordHasher()` defaults, as server.identity.passwords), record the
                       sign-in, insert a session row, sign an access and a refresh JWT (HS256, the
                       claims Relais signs), load the user's role and permission names, answer the
                       tokens and the user, and set the HttpOnly access_token cookie.
    GET /auth/me       verify the bearer JWT, load the session row (live? same user?), the user
                       row, and the user's role and permission names, and answer the user.
    GET /api/chats     authenticate as GET /auth/me does (session and user rows), then one page
                       of the user's conversations, most recently active first, with each one's
                       agent (joined), and their total: FoyerGPT's conversation list.

It is written the way such an app usually is (pydantic request and response models, a yielded
`get_db` session dependency, a `get_current_user` dependency) and runs only in the benchmark's
plain server child, against its own SQLite file with the engine options and pragmas Relais uses.
It keeps no rate-limit counters (Relais' are in-process dictionaries on these runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

from server.storage import create_database

ALGORITHM = "HS256"
ISSUER = "plain"
ACCESS_TTL = timedelta(seconds=3600)
REFRESH_TTL = timedelta(days=30)
ACTIVITY_GRANULARITY = timedelta(seconds=60)
MAX_PASSWORD = 256
MAX_PAGE = 100


# ── Tables ──────────────────────────────────────────────────────────────────────────────────


class Base(DeclarativeBase):
    pass


user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

role_permissions = Table(
    "role_permissions",
    Base.metadata,
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_id", Integer, ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Permission(Base):
    __tablename__ = "permissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[list[Permission]] = relationship(secondary=role_permissions)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    trigramme: Mapped[str | None] = mapped_column(String(8), unique=True, nullable=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    roles: Mapped[list[Role]] = relationship(secondary=user_roles)


class AuthSession(Base):
    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(String(512), default="")
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_activity: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    refresh_jti: Mapped[str] = mapped_column(String(64))
    csrf_hash: Mapped[str] = mapped_column(String(64))


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    agent: Mapped[Agent | None] = relationship(lazy="raise")


# ── Request and response bodies ─────────────────────────────────────────────────────────────


class LoginIn(BaseModel):
    user: str = ""
    username: str = ""
    email: str = ""
    password: str = ""


class UserOut(BaseModel):
    id: int
    email: str
    username: str
    name: str
    full_name: str
    trigramme: str
    is_active: bool
    is_admin: bool
    roles: list[str]
    permissions: list[str]
    created_at: datetime | None
    last_login: datetime | None


class ChatAgentOut(BaseModel):
    id: int
    name: str
    avatar_url: str | None = None


class ChatOut(BaseModel):
    id: int
    title: str
    user_id: int
    agent_id: int | None
    agent: ChatAgentOut | None
    messages: list[dict[str, object]]
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ChatPageOut(BaseModel):
    chats: list[ChatOut]
    total: int
    limit: int
    offset: int


class TokenOut(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    csrf_token: str
    session_id: str
    user: UserOut


# ── Resources and dependencies ──────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    session_id: str


class Identity:
    """The app's engine, session factory, password hasher and signing key."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # The engine and session factory exactly as Relais builds them (pool, pragmas).
        database = create_database(f"sqlite+aiosqlite:///{data_dir / 'plain.db'}")
        self.engine, self.sessions = database.engine, database.sessions
        self.hasher = PasswordHasher()
        # Verified against for unknown accounts, so timing does not tell which accounts exist.
        self.dummy_hash = self.hasher.hash("plain-timing-equaliser")
        self.key = secrets.token_urlsafe(64)

    def verify_password(self, password_hash: str | None, password: str) -> bool:
        if len(password) > MAX_PASSWORD:
            return False
        try:
            return self.hasher.verify(password_hash or self.dummy_hash, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def issue(self, user_id: int, session_id: str, kind: str, lifetime: timedelta) -> tuple[str, str]:
        """A signed token and its id."""
        now = utcnow()
        token_id = secrets.token_urlsafe(16)
        payload = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "jti": token_id,
            "typ": kind,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(payload, self.key, algorithm=ALGORITHM), token_id

    def verify_token(self, token: str, kind: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "jti", "typ"]},
            )
        except jwt.InvalidTokenError:
            raise HTTPException(401, "Invalid token") from None
        if payload["typ"] != kind:
            raise HTTPException(401, f"Not an {kind} token")
        return Claims(user_id=int(payload["sub"]), session_id=str(payload["sid"]))

    async def setup(self, *, email: str, password: str, chats: int) -> None:
        """Create the tables, the admin role (permission "*") and the account with `chats`
        conversations, once."""
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with self.sessions() as session, session.begin():
            if await session.scalar(select(User.id).where(User.email == email)) is not None:
                return
            role = Role(name="admin", permissions=[Permission(name="*")])
            user = User(
                email=email,
                username=email,
                full_name="Administrator",
                password_hash=self.hasher.hash(password),
                roles=[role],
            )
            session.add(user)
            await session.flush()
            session.add_all(Chat(owner_id=user.id, title=f"Conversation {number}") for number in range(1, chats + 1))


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with identity_of(request).sessions() as session:
        yield session


Db = Annotated[AsyncSession, Depends(get_db)]


async def user_out(db: AsyncSession, user: User) -> UserOut:
    roles = sorted(
        await db.scalars(
            select(Role.name).join(user_roles, user_roles.c.role_id == Role.id).where(user_roles.c.user_id == user.id)
        )
    )
    permissions = sorted(
        set(
            await db.scalars(
                select(Permission.name)
                .join(role_permissions, role_permissions.c.permission_id == Permission.id)
                .join(user_roles, user_roles.c.role_id == role_permissions.c.role_id)
                .where(user_roles.c.user_id == user.id)
            )
        )
    )
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        name=user.full_name,
        full_name=user.full_name,
        trigramme=user.trigramme or "",
        is_active=user.is_active,
        is_admin="admin" in roles or "*" in permissions,
        roles=roles,
        permissions=permissions,
        created_at=aware(user.created_at),
        last_login=aware(user.last_login) if user.last_login else None,
    )


async def get_current_user_row(request: Request, db: Db, authorization: Annotated[str, Header()] = "") -> User:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authentication required")
    claims = identity_of(request).verify_token(token.strip(), "access")
    now = utcnow()
    row = await db.get(AuthSession, claims.session_id)
    if row is None or row.revoked_at is not None or aware(row.expires_at) <= now:
        raise HTTPException(401, "Session ended")
    if row.user_id != claims.user_id:
        raise HTTPException(401, "Invalid token")
    user = await db.get(User, row.user_id)
    if user is None or not user.is_active:
        raise HTTPException(401, "Account unavailable")
    if now - aware(row.last_activity) > ACTIVITY_GRANULARITY:
        row.last_activity = now
        await db.commit()
    return user


CurrentUser = Annotated[User, Depends(get_current_user_row)]


async def get_current_user(db: Db, user: CurrentUser) -> UserOut:
    return await user_out(db, user)


# ── The app ─────────────────────────────────────────────────────────────────────────────────


def create_app(data_dir: Path, *, email: str, password: str, chats: int = 0) -> FastAPI:
    identity = Identity(data_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await identity.setup(email=email, password=password, chats=chats)
        yield
        await identity.engine.dispose()

    app = FastAPI(title="plain identity", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.identity = identity
    app.add_api_route("/auth/login", login, methods=["POST"], response_model=TokenOut)
    app.add_api_route("/auth/me", me, methods=["GET"], response_model=UserOut)
    app.add_api_route("/api/chats", list_chats, methods=["GET"], response_model=ChatPageOut)
    return app


async def login(body: LoginIn, request: Request, response: Response, db: Db) -> TokenOut:
    identity = identity_of(request)
    name = (body.user or body.username or body.email).strip().lower()
    if not name or not body.password:
        raise HTTPException(422, "user, username or email, and password, are required")
    async with db.begin():
        statement = select(User).where(or_(func.lower(User.email) == name, func.lower(User.username) == name))
        user = (await db.scalars(statement.limit(1))).first()
        valid = identity.verify_password(user.password_hash if user else None, body.password)
        if user is None or not valid:
            raise HTTPException(401, "Invalid credentials")
        if not user.is_active:
            raise HTTPException(403, "This account is deactivated")
        if identity.hasher.check_needs_rehash(user.password_hash):
            user.password_hash = identity.hasher.hash(body.password)
        now = utcnow()
        user.last_login = now
        csrf = secrets.token_urlsafe(32)
        row = AuthSession(
            id=str(uuid.uuid4()),
            user_id=user.id,
            client=request.headers.get("user-agent", "")[:512],
            ip_address=(request.client.host if request.client else "")[:64],
            created_at=now,
            last_activity=now,
            expires_at=now + REFRESH_TTL,
            refresh_jti="",
            csrf_hash=hashlib.sha256(csrf.encode()).hexdigest(),
        )
        db.add(row)
        access, _ = identity.issue(user.id, row.id, "access", ACCESS_TTL)
        refresh, row.refresh_jti = identity.issue(user.id, row.id, "refresh", REFRESH_TTL)
        await db.flush()
        user_body = await user_out(db, user)
    expires_in = int(ACCESS_TTL.total_seconds())
    response.set_cookie("access_token", access, max_age=expires_in, path="/", httponly=True, samesite="lax")
    return TokenOut(
        access_token=access,
        token_type="bearer",
        expires_in=expires_in,
        refresh_token=refresh,
        csrf_token=csrf,
        session_id=row.id,
        user=user_body,
    )


async def me(user: Annotated[UserOut, Depends(get_current_user)]) -> UserOut:
    return user


def chat_out(chat: Chat) -> ChatOut:
    agent = chat.agent
    # As Relais: an agent shows itself only while its owner or the public may use it.
    shown = agent is not None and (agent.is_public or agent.owner_id == chat.owner_id)
    return ChatOut(
        id=chat.id,
        title=chat.title,
        user_id=chat.owner_id,
        agent_id=chat.agent_id,
        agent=ChatAgentOut(id=agent.id, name=agent.name, avatar_url=agent.avatar_url) if shown and agent else None,
        messages=[],
        message_count=chat.message_count,
        last_message_at=aware(chat.last_message_at) if chat.last_message_at else None,
        created_at=aware(chat.created_at),
        updated_at=aware(chat.updated_at),
    )


async def list_chats(
    db: Db,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 0,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChatPageOut:
    limit = limit or 20
    mine = Chat.owner_id == user.id
    total = await db.scalar(select(func.count()).select_from(Chat).where(mine)) or 0
    activity = func.coalesce(Chat.last_message_at, Chat.created_at)
    statement = (
        select(Chat)
        .where(mine)
        .options(joinedload(Chat.agent))
        .order_by(activity.desc(), Chat.id.desc())
        .limit(limit)
        .offset(offset)
    )
    chats = (await db.scalars(statement)).all()
    return ChatPageOut(chats=[chat_out(chat) for chat in chats], total=total, limit=limit, offset=offset)
