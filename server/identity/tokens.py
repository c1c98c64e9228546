"""Signed tokens (JWT, HS256) and the signing key.

Access and refresh tokens carry the session id (`sid`): the session row, not the
token, decides whether a token still works, so revocation takes effect at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from sqlalchemy.exc import IntegrityError

from server.errors import Unauthenticated
from server.storage import Database
from server.storage.queries import add_system_setting, system_setting

ALGORITHM = "HS256"
ISSUER = "relais"
SIGNING_KEY_SETTING = "jwt_signing_key"
MIN_KEY_LENGTH = 32

TokenType = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    user_id: int
    session_id: str
    token_id: str
    kind: TokenType
    expires_at: datetime


class TokenSigner:
    def __init__(self, key: str) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"the signing key must be at least {MIN_KEY_LENGTH} characters")
        self._key = key

    def issue(self, *, user_id: int, session_id: str, kind: TokenType, lifetime: timedelta) -> tuple[str, TokenClaims]:
        now = datetime.now(UTC)
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            token_id=secrets.token_urlsafe(16),
            kind=kind,
            expires_at=now + lifetime,
        )
        payload = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "jti": claims.token_id,
            "typ": kind,
            "iat": now,
            "exp": claims.expires_at,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def verify(self, token: str, kind: TokenType) -> TokenClaims:
        """The claims of a valid, unexpired token of `kind`; Unauthenticated otherwise."""
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token expired") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("Invalid token") from None
        if payload["typ"] != kind:
            raise Unauthenticated(f"Not an {kind} token" if kind == "access" else f"Not a {kind} token")
        return TokenClaims(
            user_id=int(payload["sub"]),
            session_id=str(payload["sid"]),
            token_id=str(payload["jti"]),
            kind=kind,
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )


async def load_signing_key(database: Database, configured: str | None) -> str:
    """The configured key, else the one stored at first start (generated then, once,
    even when several replicas start together)."""
    if configured:
        return configured
    try:
        async with database.sessions() as session, session.begin():
            if stored := await system_setting(session, SIGNING_KEY_SETTING):
                return stored
            add_system_setting(session, SIGNING_KEY_SETTING, secrets.token_urlsafe(64))
    except IntegrityError:
        pass  # another replica stored one first: use theirs
    async with database.sessions() as session:
        stored = await system_setting(session, SIGNING_KEY_SETTING)
    if not stored:
        raise RuntimeError("the signing key could not be stored")
    return stored
