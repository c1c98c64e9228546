"""Translate domain errors into gRPC statuses with rich details, once, here.

The status carries google.rpc details the bridge turns into the unified error body:
ErrorInfo (reason → body `code`), BadRequest (field violations → body `details`)
and RequestInfo (the request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.errors import DomainError, RateLimited, Unavailable, ValidationFailed
from server.interceptors.call import CallState

log = logging.getLogger("relais.grpc.errors")

ERROR_DOMAIN = "relais"


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: DomainError, request_id: str) -> status_pb2.Status:
    """The google.rpc.Status for a domain error."""
    details = [
        _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)),
        _pack(error_details_pb2.RequestInfo(request_id=request_id)),
    ]
    if isinstance(error, ValidationFailed):
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message) for v in error.violations
        ]
        details.append(_pack(error_details_pb2.BadRequest(field_violations=violations)))
    return status_pb2.Status(code=code_pb2.Code.Value(error.code), message=error.message, details=details)


def internal_status(request_id: str) -> status_pb2.Status:
    """What a client learns of an unexpected failure: nothing but where to look."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"Internal error; the server log has the details under request id {request_id}",
        details=[
            _pack(error_details_pb2.ErrorInfo(reason="INTERNAL_ERROR", domain=ERROR_DOMAIN)),
            _pack(error_details_pb2.RequestInfo(request_id=request_id)),
        ],
    )


# Turns an exception of a dependency (a lost database connection...) into the domain error it
# means, or None when it means nothing known (then it is an internal error).
Translate = Callable[[BaseException], DomainError | None]


def _untranslated(error: BaseException) -> DomainError | None:
    return None


class ErrorScope:
    def __init__(self, translate: Translate = _untranslated) -> None:
        self._translate = translate

    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        try:
            yield
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except DomainError as error:
            await self._refuse(error, state, context)
        except Exception as error:
            translated = self._translate(error)
            if translated is None:
                log.exception("unexpected error in %s request_id=%s", state.method, state.request_id)
                await self._abort(context, internal_status(state.request_id), state)
            else:
                await self._refuse(translated, state, context)

    async def _refuse(self, error: DomainError, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if isinstance(error, Unavailable) and not error.reported:
            # The server's trouble, not the caller's: an operator needs the why, once per call.
            log.warning("%s request_id=%s unavailable: %s", state.method, state.request_id, error.message)
        if retry_after := getattr(error, "retry_after", 0):
            state.response_metadata.append(("retry-after", str(retry_after)))
        if isinstance(error, RateLimited):
            # The answer describes the limit that refused the call (the sign-in limit…), not another.
            metadata = state.response_metadata
            kept = [(k, v) for k, v in metadata if not k.startswith("x-ratelimit-") and k != "retry-after"]
            metadata[:] = [*kept, *error.headers]
        await self._abort(context, to_status(error, state.request_id), state)

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status, state: CallState) -> None:
        grpc_status = rpc_status.to_status(status)
        metadata = tuple(grpc_status.trailing_metadata) + tuple(state.response_metadata)
        await context.abort(grpc_status.code, grpc_status.details, metadata)
