"""Domain errors: the one exception family domain code raises.

    DomainError
    ├── InvalidArgument         malformed request              INVALID_ARGUMENT
    │   └── ValidationFailed    named fields break rules       INVALID_ARGUMENT + BadRequest (HTTP 422)
    ├── Unauthenticated         no or bad credentials          UNAUTHENTICATED
    ├── PermissionDenied        authenticated, not allowed     PERMISSION_DENIED
    │   └── CsrfFailed          cookie call without CSRF token PERMISSION_DENIED
    ├── NotFound                no such resource (or hidden)   NOT_FOUND
    ├── AlreadyExists           unique constraint              ALREADY_EXISTS
    ├── FailedPrecondition      wrong state for the operation  FAILED_PRECONDITION
    ├── ResourceExhausted       rate limit, quota              RESOURCE_EXHAUSTED
    │   └── PayloadTooLarge     upload over the size limit     RESOURCE_EXHAUSTED (HTTP 413)
    ├── Unavailable             a dependency is down           UNAVAILABLE
    └── DeadlineExceeded        a dependency is too slow       DEADLINE_EXCEEDED

Each class carries a transport-neutral `code` (gRPC's canonical status names,
which every transport maps) and a `reason`, the machine-readable word that
reaches clients as the error body's `code`. The server's error interceptor is the
only place these become gRPC statuses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldViolation:
    """One invalid field: `field` is its JSON path, e.g. "email" or "items[2].name"."""

    field: str
    message: str


class DomainError(Exception):
    code = "UNKNOWN"
    reason = "ERROR"

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata or {}


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    reason = "BAD_REQUEST"


class ValidationFailed(InvalidArgument):
    reason = "VALIDATION_ERROR"

    def __init__(self, violations: list[FieldViolation], message: str = "Validation failed") -> None:
        super().__init__(message)
        self.violations = violations

    def __str__(self) -> str:
        # Where no client reads the details (start-up, logs), say which fields and why.
        return f"{self.message}: " + "; ".join(f"{v.field} {v.message}" for v in self.violations)


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    reason = "AUTHENTICATION_ERROR"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    reason = "AUTHORIZATION_ERROR"


class CsrfFailed(PermissionDenied):
    reason = "CSRF_ERROR"


class NotFound(DomainError):
    code = "NOT_FOUND"
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    reason = "CONFLICT"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"
    reason = "FAILED_PRECONDITION"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"
    reason = "RATE_LIMIT"


class PayloadTooLarge(ResourceExhausted):
    reason = "PAYLOAD_TOO_LARGE"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
    reason = "TIMEOUT"
