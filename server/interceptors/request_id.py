"""Give every call an id: the caller's `x-request-id` if it is sane, else a new one."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server import tracing
from server.interceptors.call import CallState

_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


class RequestIdScope:
    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        given = metadata_value(context, "x-request-id")
        state.request_id = given if given and _SANE.match(given) else new_request_id()
        state.response_metadata.append(("x-request-id", state.request_id))
        tracing.annotate(request_id=state.request_id)
        try:
            yield
        finally:
            # Errors are aborted with their own trailing metadata (see errors.py);
            # this covers the successful calls.
            context.set_trailing_metadata(tuple(state.response_metadata))
