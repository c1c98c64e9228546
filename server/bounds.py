"""Check a request against the limits its fields declare (relais.options.v1.bounds).

The same declarations become the constraints of /openapi.json (bridge/openapi.py), so what
the document promises and what the server refuses cannot drift apart. Every violation is
reported at once, by field path, as a ValidationFailed (HTTP 422).

    check_bounds(request)   # raises ValidationFailed([FieldViolation("limit", "must be at most 100")])
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from server.errors import FieldViolation, ValidationFailed

FD = FieldDescriptor
# Messages nested deeper than this are not walked (requests are shallow; Struct values have no bounds).
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class _Rule:
    field: FieldDescriptor
    bounds: options_pb2.FieldBounds
    pattern: re.Pattern[str] | None


@functools.cache
def _rules(descriptor: Descriptor) -> tuple[tuple[_Rule, ...], tuple[FieldDescriptor, ...]]:
    """(fields with bounds, message fields to walk into) of a message type."""
    rules, nested = [], []
    for field in descriptor.fields:
        options = field.GetOptions()
        if options.HasExtension(options_pb2.bounds):
            bounds = options.Extensions[options_pb2.bounds]
            pattern = re.compile(bounds.pattern) if bounds.pattern else None
            rules.append(_Rule(field, bounds, pattern))
        if field.cpp_type == FD.CPPTYPE_MESSAGE and not field.message_type.full_name.startswith("google.protobuf."):
            nested.append(field)
    return tuple(rules), tuple(nested)


def check_bounds(message: Message) -> None:
    violations = list(bound_violations(message))
    if violations:
        raise ValidationFailed(violations)


def bound_violations(message: Message, prefix: str = "", depth: int = 0) -> list[FieldViolation]:
    rules, nested = _rules(message.DESCRIPTOR)
    violations: list[FieldViolation] = []
    for rule in rules:
        violations += _field_violations(message, rule, prefix + rule.field.name)
    if depth < MAX_DEPTH:
        for field in nested:
            if field.message_type.GetOptions().map_entry:
                continue
            if field.is_repeated:
                for index, item in enumerate(getattr(message, field.name)):
                    violations += bound_violations(item, f"{prefix}{field.name}[{index}].", depth + 1)
            elif message.HasField(field.name):
                violations += bound_violations(getattr(message, field.name), f"{prefix}{field.name}.", depth + 1)
    return violations


def _given(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return bool(message.HasField(field.name))
    value = getattr(message, field.name)
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def _field_violations(message: Message, rule: _Rule, path: str) -> list[FieldViolation]:
    field, bounds = rule.field, rule.bounds
    if not _given(message, field):
        return [FieldViolation(field=path, message="is required")] if bounds.required else []
    value = getattr(message, field.name)
    if bounds.required and isinstance(value, str) and not value.strip():
        return [FieldViolation(field=path, message="is required")]  # blank: as good as absent
    if field.is_repeated:
        found = _size_violation(len(value), bounds, "items")
        for item in value:
            found = found or _value_violation(item, rule)
        return [FieldViolation(field=path, message=found)] if found else []
    found = _value_violation(value, rule)
    return [FieldViolation(field=path, message=found)] if found else []


def _value_violation(value: Any, rule: _Rule) -> str | None:
    bounds = rule.bounds
    if isinstance(value, str):
        if not rule.field.is_repeated and (found := _size_violation(len(value), bounds, "characters")):
            return found
        if rule.pattern is not None and not rule.pattern.fullmatch(value):
            return f"must match {bounds.pattern}"
        if bounds.one_of and value not in bounds.one_of:
            return f"must be one of {', '.join(bounds.one_of)}"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if bounds.HasField("minimum") and value < bounds.minimum:
            return f"must be at least {_number(bounds.minimum)}"
        if bounds.HasField("maximum") and value > bounds.maximum:
            return f"must be at most {_number(bounds.maximum)}"
    return None


def _size_violation(size: int, bounds: options_pb2.FieldBounds, unit: str) -> str | None:
    if bounds.HasField("min_length") and size < bounds.min_length:
        return f"must have at least {bounds.min_length} {unit}"
    if bounds.HasField("max_length") and size > bounds.max_length:
        return f"must have at most {bounds.max_length} {unit}"
    return None


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
