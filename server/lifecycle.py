"""A shutdown that keeps its promise: `RELAIS_SHUTDOWN_GRACE` seconds, then a terminal event.

On SIGTERM, `RelaisServer.drain(grace)`:

1. turns draining at once: `/health` answers 503 `draining`, the gRPC health service NOT_SERVING,
   and every new call but health probes is refused with UNAVAILABLE (SHUTTING_DOWN, Retry-After),
   so a balancer moves traffic;
2. gives the calls in flight the grace to finish (live-update streams, which never finish by
   themselves, do not hold it up);
3. ends what is left, in an order that lets every terminal event out: first the generations
   (each stream ends with an `error` event keeping its partial text, and a chat reply is stored
   `incomplete`), then the other streaming calls, then the live-update streams last: the
   WebSockets that carry generations hold a session stream, and closing it first would close
   those sockets before the generations' error frames are out.

`Drain` is also the interceptor scope that refuses new calls and knows the calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from server.auth import AccessPolicy
from server.errors import ShuttingDown
from server.interceptors.call import CallState

log = logging.getLogger("relais.lifecycle")

# Streams of live updates: they last as long as their client stays, so the grace does not wait for
# them, and they end last (see the module's docstring).
LIVE_SERVICES = ("/relais.v1.LiveService/", "/relais.v1.EventService/")
# How long each step of the end waits for the calls it ended to say so.
STEP_TIMEOUT = 0.25


def is_live(method: str) -> bool:
    return method.startswith(LIVE_SERVICES)


class Drain:
    def __init__(self, policy: AccessPolicy) -> None:
        self._policy = policy
        self.draining = False
        self._calls: dict[int, tuple[CallState, asyncio.Task[Any] | None]] = {}
        self._changed = asyncio.Event()
        self.error = ShuttingDown("The server is shutting down; retry, another instance will answer")

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        if self.draining and not self._policy.rule_for(state.method).unmetered:
            raise self.error
        task = asyncio.current_task()
        key = id(state)
        self._calls[key] = (state, task)
        try:
            yield
        except asyncio.CancelledError:
            if state.interrupted is not self.error or task is None:
                raise
            task.uncancel()
            raise self.error from None
        finally:
            del self._calls[key]
            self._changed.set()

    def begin(self) -> None:
        if not self.draining:
            self.draining = True
            log.info("draining: new calls are refused; %d in flight", len(self._calls))

    def in_flight(self, which: Callable[[CallState], bool]) -> list[CallState]:
        return [state for state, _ in self._calls.values() if which(state)]

    async def wait(self, which: Callable[[CallState], bool], within: float) -> bool:
        """Wait until no call `which` selects is in flight; False if some still are after `within` seconds."""
        deadline = time.monotonic() + within
        while self.in_flight(which):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    def interrupt(self, which: Callable[[CallState], bool]) -> int:
        """End the streaming calls `which` selects with the shutdown error; how many."""
        ended = 0
        for state, task in list(self._calls.values()):
            if state.streaming and task is not None and which(state):
                state.interrupt(task, self.error)
                ended += 1
        return ended


def working(state: CallState) -> bool:
    """A call doing work that can finish: anything but a live-update stream."""
    return not is_live(state.method)


def everything(state: CallState) -> bool:
    return True
