"""gRPC status → HTTP status and the one error body every route returns.

    {"detail": "Item 7 not found", "code": "NOT_FOUND", "status": "error",
     "timestamp": "2024-01-15T10:30:00Z", "request_id": "req_…",
     "error": {"code": "NOT_FOUND", "message": "Item 7 not found", "details": [],
               "timestamp": "2024-01-15T10:30:00Z", "request_id": "req_…"}}

The body is a superset of the formats the seeds document (`detail` + `code` +
`timestamp`, FoyerGPT's `status`, xcore's nested `error` with field `details`).

A binding may declare another shape (relais.options.v1.ErrorFormat); ERROR_FORMAT_OPENAI is
OpenAI's, for the routes its SDKs call:

    {"error": {"message": "Item 7 not found", "type": "invalid_request_error",
               "param": null, "code": "not_found"}}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import orjson
from google.rpc import error_details_pb2, status_pb2
from relais.options.v1 import options_pb2
from starlette.responses import Response

from bridge.violations import FieldViolation

# grpc-gateway's table (runtime/errors.go), with its deliberate choices kept.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,  # the client went away: nginx's "client closed request"
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,  # not 412: that one is about HTTP conditional headers
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# Reasons (google.rpc.ErrorInfo) whose HTTP status is more specific than their gRPC code's.
_REASON_STATUS = {
    "VALIDATION_ERROR": 422,  # field-level validation, as FastAPI clients expect
    "IDEMPOTENCY_KEY_REUSED": 422,  # the IETF Idempotency-Key draft's status for a key reused with another body
    "PAYLOAD_TOO_LARGE": 413,
    "STATE_CONFLICT": 409,  # valid, but the resource's state forbids it (a built-in role, one's own account)
}

# The body's `code` when the status carries no ErrorInfo (e.g. a transport failure).
_DEFAULT_REASON = {
    grpc.StatusCode.INVALID_ARGUMENT: "BAD_REQUEST",
    grpc.StatusCode.UNAUTHENTICATED: "AUTHENTICATION_ERROR",
    grpc.StatusCode.PERMISSION_DENIED: "AUTHORIZATION_ERROR",
    grpc.StatusCode.ALREADY_EXISTS: "CONFLICT",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "RATE_LIMIT",
    grpc.StatusCode.UNAVAILABLE: "SERVICE_UNAVAILABLE",
    grpc.StatusCode.DEADLINE_EXCEEDED: "TIMEOUT",
    grpc.StatusCode.INTERNAL: "INTERNAL_ERROR",
    grpc.StatusCode.UNKNOWN: "INTERNAL_ERROR",
    grpc.StatusCode.DATA_LOSS: "INTERNAL_ERROR",
}

# What a client is told when the failure is the transport's, not the service's:
# the raw text names internal addresses.
_TRANSPORT_MESSAGE = {
    grpc.StatusCode.UNAVAILABLE: "The service is temporarily unavailable; retry shortly",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The service did not answer in time",
    grpc.StatusCode.CANCELLED: "The request was cancelled",
    # grpc's own text for these names Python exceptions ("Exception deserializing request!",
    # "Unexpected <class '…DecodeError'>"): internals no client is told.
    grpc.StatusCode.INTERNAL: "Internal error; the server log has the details",
    grpc.StatusCode.UNKNOWN: "Internal error; the server log has the details",
    grpc.StatusCode.DATA_LOSS: "Internal error; the server log has the details",
}


OPENAI = options_pb2.ERROR_FORMAT_OPENAI
# OpenAI's error `type` by HTTP status; 5xx are "server_error".
_OPENAI_TYPE = {
    401: "authentication_error",
    403: "permission_error",
    429: "requests",
}
# Reasons OpenAI has its own word for; the others are the reason in lowercase.
_OPENAI_CODE = {
    "AUTHENTICATION_ERROR": "invalid_api_key",
    "RATE_LIMIT": "rate_limit_exceeded",
    "UNKNOWN_MODEL": "model_not_found",
}


def http_status(code: grpc.StatusCode, reason: str = "") -> int:
    return _REASON_STATUS.get(reason) or _HTTP_STATUS.get(code, 500)


def reason_for(code: grpc.StatusCode) -> str:
    return _DEFAULT_REASON.get(code, str(code.name))


def error_body(
    *, code: str, message: str, request_id: str, details: list[FieldViolation] | None = None
) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "detail": message,
        "code": code,
        "status": "error",
        "timestamp": now,
        "request_id": request_id,
        "error": {
            "code": code,
            "message": message,
            "details": [{"field": v.field, "message": v.message} for v in details or ()],
            "timestamp": now,
            "request_id": request_id,
        },
    }


def openai_error_body(
    *, status: int, code: str, message: str, details: list[FieldViolation] | None = None
) -> dict[str, object]:
    """OpenAI's error body; `param` is the first invalid field."""
    kind = "server_error" if status >= 500 else _OPENAI_TYPE.get(status, "invalid_request_error")
    param = details[0].field if details else None
    return {"error": {"message": message, "type": kind, "param": param, "code": _OPENAI_CODE.get(code, code.lower())}}


def formatted_status(status: int, error_format: int) -> int:
    """OpenAI answers field validation with 400, not 422."""
    return 400 if error_format == OPENAI and status == 422 else status


def error_response(
    status: int,
    *,
    code: str,
    message: str,
    request_id: str,
    details: list[FieldViolation] | None = None,
    headers: dict[str, str] | None = None,
    error_format: int = 0,
) -> Response:
    status = formatted_status(status, error_format)
    if error_format == OPENAI:
        payload = openai_error_body(status=status, code=code, message=message, details=details)
    else:
        payload = error_body(code=code, message=message, request_id=request_id, details=details)
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def validation_response(violations: list[FieldViolation], request_id: str, error_format: int = 0) -> Response:
    return error_response(
        422,
        code="VALIDATION_ERROR",
        message="Validation failed: " + "; ".join(f"{v.field} {v.message}" for v in violations)
        if error_format == OPENAI
        else "Validation failed",
        request_id=request_id,
        details=violations,
        error_format=error_format,
    )


@dataclass(frozen=True, slots=True)
class RpcFailure:
    """What the HTTP client is told about a failed RPC, whatever the framing."""

    status: int
    code: str
    message: str
    violations: list[FieldViolation]

    def body(self, request_id: str, error_format: int = 0) -> dict[str, object]:
        if error_format == OPENAI:
            status = formatted_status(self.status, error_format)
            return openai_error_body(status=status, code=self.code, message=self.message, details=self.violations)
        return error_body(code=self.code, message=self.message, request_id=request_id, details=self.violations)


def rpc_failure(error: grpc.aio.AioRpcError) -> RpcFailure:
    """Read a failed RPC's google.rpc.Status details."""
    code = error.code()
    status = _status_details(error)
    reason = ""
    violations: list[FieldViolation] = []
    message = error.details() or code.name
    if status is None:
        message = _TRANSPORT_MESSAGE.get(code, message)
    else:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [FieldViolation(field=v.field, message=v.description) for v in bad.field_violations]
    return RpcFailure(http_status(code, reason), reason or reason_for(code), message, violations)


def rpc_error_response(
    error: grpc.aio.AioRpcError, request_id: str, headers: dict[str, str] | None = None, error_format: int = 0
) -> Response:
    """The HTTP answer for a failed RPC, from its google.rpc.Status details."""
    failure = rpc_failure(error)
    return error_response(
        failure.status,
        code=failure.code,
        message=failure.message,
        request_id=request_id,
        details=failure.violations,
        headers=headers,
        error_format=error_format,
    )


def _status_details(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None
