"""Views: the plain, frozen values a domain hands its servicer and other domains instead of
table rows (read while the database session is open, so nothing is loaded lazily later).

    @dataclass(frozen=True, slots=True, kw_only=True)
    class DocumentView:
        id: int
        filename: str

        @classmethod
        def of(cls, row: Document) -> DocumentView:
            return copied(cls, row)          # every field read off the row under its own name

Fields a row does not hold under the view's name are given as keywords:
`copied(cls, agent, owner_trigramme=agent.owner.trigramme)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

View = TypeVar("View")
_names: dict[type, tuple[str, ...]] = {}


def copied(view: type[View], row: object, **given: Any) -> View:
    """A `view` of `row`: each of its fields read off the row's attribute of the same name,
    except those `given`."""
    names = _names.get(view)
    if names is None:
        names = _names[view] = tuple(field.name for field in dataclasses.fields(view))  # type: ignore[arg-type]
    values = {name: getattr(row, name) for name in names if name not in given}
    return view(**values, **given)
