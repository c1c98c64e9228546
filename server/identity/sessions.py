"""Sign-in sessions: a user's own, and every user's for those who may manage them."""

from __future__ import annotations

from server.auth import Principal
from server.errors import NotFound, PermissionDenied
from server.identity import repository
from server.identity.core import IdentityCore, log, user_id_of
from server.identity.values import SessionView, now

# A listing shows the newest sessions; older ones are ended by their expiry, not by hand.
MAX_LISTED_SESSIONS = 500


class Sessions(IdentityCore):
    """Listing sessions, ending one, and the one a call belongs to."""

    async def list_sessions(
        self, principal: Principal, *, include_inactive: bool, all_users: bool
    ) -> list[SessionView]:
        if all_users and not principal.can("sessions:read"):
            raise PermissionDenied("Permission 'sessions:read' required")
        statement = repository.auth_sessions(
            user_id=None if all_users else user_id_of(principal),
            live_at=None if include_inactive else now(),
            limit=MAX_LISTED_SESSIONS,
        )
        async with self._database.sessions() as session:
            return [SessionView.of(row) for row in await session.scalars(statement)]

    async def terminate_session(self, principal: Principal, session_id: str) -> SessionView:
        async with self._database.sessions() as session, session.begin():
            row = await repository.get_session(session, session_id)
            # Another user's session is invisible (404), unless the caller may manage sessions.
            if row is None or (row.user_id != principal.user_id and not principal.can("sessions:write")):
                raise NotFound("No such session")
            if row.revoked_at is None:
                row.revoked_at = now()
            ended = SessionView.of(row)
        log.info("session terminated session_id=%s by=%s", session_id, principal.subject)
        await self._sessions_ended(ended.user_id, session_id=session_id, reason="terminated")
        return ended

    async def get_current_session(self, principal: Principal, *, requested: str | None) -> SessionView:
        session_id = requested or principal.session_id
        if not session_id:
            raise NotFound("This call has no session (API key); send X-Session-ID")
        async with self._database.sessions() as session:
            row = await repository.get_session(session, session_id)
        if row is None or (row.user_id != principal.user_id and not principal.can("sessions:read")):
            raise NotFound("No such session")
        return SessionView.of(row)
