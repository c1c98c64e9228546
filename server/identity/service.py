"""Accounts, sign-in, sessions and authentication: the identity domain's logic.

    identity = IdentityService(database=..., signer=..., limiter=..., access_ttl=900, refresh_ttl=86400, ...)
    issued = await identity.login(login="ada@example.org", password="...", client=ClientInfo(...))
    principal = await identity.authenticate(Credentials(bearer=issued.access_token))

IdentityService is one object over one core (core.py: the database, the token signer, the sign-in
limits, the principal cache and the session-end announcements), its concerns in their own modules:
accounts.py (registration, profile, password, user administration), sign_in.py (login, refresh,
logout), sessions.py (listing and ending sessions) and authentication.py (tokens and API keys to
principals). Servicers get views (values.py), never rows.
"""

from __future__ import annotations

from server.identity.accounts import Accounts, NewAccount
from server.identity.authentication import Authentication
from server.identity.core import UserDeletionHook
from server.identity.sessions import Sessions
from server.identity.sign_in import IssuedTokens, SignIn

__all__ = ["IdentityService", "IssuedTokens", "NewAccount", "UserDeletionHook"]


class IdentityService(Accounts, SignIn, Sessions, Authentication):
    """Accounts, sign-in, sessions and authentication over one database and token signer."""
