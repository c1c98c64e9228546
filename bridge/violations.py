"""A field the client got wrong, as the bridge reports it (the server's own FieldViolation
travels as google.rpc.BadRequest details; the bridge shares no code with the server)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldViolation:
    """One invalid field: `field` is its JSON path, e.g. "email" or "items[2].name"."""

    field: str
    message: str
