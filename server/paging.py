"""Pagination parameters, read the same way by every listing."""

from __future__ import annotations

from server.errors import FieldViolation, ValidationFailed

MAX_PAGE = 100


def page_window(*, skip: int, offset: int, limit: int, default: int = 20) -> tuple[int, int]:
    """(skip, limit) from either pagination dialect; limit capped at 100."""
    violations = []
    if skip < 0:
        violations.append(FieldViolation(field="skip", message="must be zero or more"))
    if offset < 0:
        violations.append(FieldViolation(field="offset", message="must be zero or more"))
    if limit < 0:
        violations.append(FieldViolation(field="limit", message="must be between 1 and 100"))
    if violations:
        raise ValidationFailed(violations)
    return skip or offset, min(limit or default, MAX_PAGE)
