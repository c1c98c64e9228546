"""State of the RPC being served, shared by the interceptors and the servicers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Any

from server.auth import Credentials, Principal
from server.errors import Unauthenticated


@dataclass(slots=True, kw_only=True)
class CallState:
    method: str
    # A server- or bidirectional-streaming call (live for as long as the client reads).
    streaming: bool = False
    # A stream's servicer is running (not grpc writing its last item): see interrupt().
    reading: bool = False
    # Why an interrupted stream ends, raised as soon as it may be.
    interrupted: Exception | None = None
    request_id: str = ""
    principal: Principal | None = None
    # What the call presented, read once by the auth interceptor.
    credentials: Credentials = field(default_factory=Credentials)
    # Metadata to send back with the status (rate-limit headers, request id...).
    response_metadata: list[tuple[str, str]] = field(default_factory=list)

    def interrupt(self, task: asyncio.Task[Any], error: Exception) -> None:
        """End a stream with `error` from outside it: its task is cancelled if its servicer is
        awaiting something, else the error is raised once grpc has written the current item."""
        if self.interrupted is not None:
            return
        self.interrupted = error
        if self.reading:
            task.cancel()

    @property
    def client_ip(self) -> str:
        return self.credentials.client_ip or ""


_current: contextvars.ContextVar[CallState] = contextvars.ContextVar("relais_call")


def current_call() -> CallState:
    """The call being served. Only valid inside an RPC."""
    return _current.get()


def current_principal() -> Principal:
    """The caller of a non-public RPC (the auth interceptor has admitted them)."""
    found = _current.get().principal
    if found is None:
        raise Unauthenticated("Authentication required")
    return found


def begin_call(state: CallState) -> contextvars.Token[CallState]:
    return _current.set(state)


def end_call(token: contextvars.Token[CallState]) -> None:
    # A stream closed by grpc from another task (client gone) ends in a different context,
    # where there is nothing to restore.
    with contextlib.suppress(ValueError):
        _current.reset(token)
