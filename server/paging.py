"""Pagination, the same for every listing: its parameters read one way, its result one `Page`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from server.errors import FieldViolation, ValidationFailed

T = TypeVar("T")
U = TypeVar("U")

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a listing: `items` from position `skip`, at most `limit` of `total`."""

    items: list[T]
    total: int
    skip: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.skip + len(self.items) < self.total

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page, each item converted (rows to views)."""
        return Page(items=[convert(item) for item in self.items], total=self.total, skip=self.skip, limit=self.limit)

    def offset_fields(self) -> dict[str, int]:
        """Its total, limit and offset, as the responses of listings paged by offset name them."""
        return {"total": self.total, "limit": self.limit, "offset": self.skip}
