"""Access log and metrics for every call, with its final status code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from server.interceptors.call import CallState
from server.observability import AUTH_REJECTIONS, GRPC_HANDLED, GRPC_LATENCY, GRPC_STARTED

log = logging.getLogger("relais.grpc.access")


def split_method(method: str) -> tuple[str, str]:
    """'/relais.v1.SystemService/GetHealth' → ('relais.v1.SystemService', 'GetHealth')."""
    _, service, name = method.split("/", 2)
    return service, name


# grpc.StatusCode values are (number, text) tuples; servicers may set either form.
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def final_code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        return str(_CODE_NAMES.get(code, "UNKNOWN"))
    return "UNKNOWN" if error is not None else "OK"


class ObserveScope:
    @contextlib.asynccontextmanager
    async def scope(self, state: CallState, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        service, name = split_method(state.method)
        GRPC_STARTED.labels(service, name).inc()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            code = final_code(context, error)
            GRPC_HANDLED.labels(service, name, code).inc()
            if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                AUTH_REJECTIONS.labels(service, name, code).inc()
            GRPC_LATENCY.labels(service, name).observe(elapsed)
            # Never metadata or payloads: they carry credentials.
            log.info(
                "rpc method=%s code=%s duration_ms=%.2f request_id=%s principal=%s",
                state.method,
                code,
                elapsed * 1000,
                state.request_id,
                state.principal.subject if state.principal else "-",
            )
