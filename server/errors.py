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
    │   └── StateConflict       the resource's state forbids it FAILED_PRECONDITION (HTTP 409)
    ├── ResourceExhausted       rate limit, quota              RESOURCE_EXHAUSTED
    │   ├── RateLimited         a rate limit reached           RESOURCE_EXHAUSTED + its X-RateLimit-*, Retry-After
    │   └── PayloadTooLarge     upload over the size limit     RESOURCE_EXHAUSTED (HTTP 413)
    ├── Aborted                 a concurrent request conflicts ABORTED (HTTP 409)
    ├── Unavailable             a dependency is down           UNAVAILABLE (HTTP 503 + Retry-After)
    │   └── ShuttingDown        the server is draining         UNAVAILABLE
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


class StateConflict(FailedPrecondition):
    """The request is valid but conflicts with the target's current state (a built-in role,
    one's own account): HTTP 409, where other failed preconditions are 400."""

    reason = "STATE_CONFLICT"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"
    reason = "RATE_LIMIT"


class RateLimited(ResourceExhausted):
    """A rate limit was reached; `headers` (X-RateLimit-Limit/Remaining/Reset, Retry-After) describe
    that limit and replace whatever limit headers the call carried so far."""

    def __init__(self, message: str, *, headers: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.headers = headers


class PayloadTooLarge(ResourceExhausted):
    reason = "PAYLOAD_TOO_LARGE"


class Aborted(DomainError):
    """The request conflicts with another one running now (the same Idempotency-Key); retry later."""

    code = "ABORTED"
    reason = "CONFLICT"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"
    # Seconds a client should wait before retrying: the Retry-After of the answer.
    retry_after = 1
    # Already told to the operator (an outage is logged once, not once per refused call).
    reported = False


class ShuttingDown(Unavailable):
    """The server is draining: new calls are refused, and calls still running when the shutdown
    grace ends are ended. Another replica can take the retry at once."""

    reason = "SHUTTING_DOWN"
    reported = True


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
    reason = "TIMEOUT"
