"""End a streaming call with UNAUTHENTICATED when its caller's session ends (logout,
termination, deactivation, password change), on this replica or another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server.errors import Unauthenticated
from server.events.sessions import SessionWatch
from server.interceptors.call import CallState


class SessionScope:
    def __init__(self, watch: SessionWatch) -> None:
        self._watch = watch

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        principal = state.principal
        task = asyncio.current_task()
        if not state.streaming or principal is None or principal.user_id is None or task is None:
            yield
            return
        ended = Unauthenticated("Your session has ended")

        def end() -> None:
            state.interrupt(task, ended)

        with self._watch.watch(principal, end):
            try:
                yield
            except asyncio.CancelledError:
                if state.interrupted is not ended:
                    raise
                task.uncancel()
                raise ended from None
