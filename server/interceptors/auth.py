"""Enforce each method's AccessRule (relais.options.v1.access) before the servicer runs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server.auth import AccessPolicy, Authenticator, Credentials
from server.interceptors.call import CallState


class AuthScope:
    def __init__(self, policy: AccessPolicy, authenticator: Authenticator, *, trusted_proxies: frozenset[str]) -> None:
        self._policy = policy
        self._authenticator = authenticator
        self._trusted_proxies = trusted_proxies

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        rule = self._policy.rule_for(state.method)
        credentials = Credentials.from_metadata(
            context.invocation_metadata() or (), context.peer() or "", self._trusted_proxies
        )
        state.credentials = credentials
        state.principal = await self._policy.admit(rule, credentials, self._authenticator)
        yield
