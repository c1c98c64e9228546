"""JSON ⇄ protobuf with the seeds' conventions, not proto3 JSON defaults.

    field names   snake_case, as declared in the proto
    presence      every field printed: zero values, empty lists and maps; unset
                  message and `optional` fields as null; of a real oneof, only the set member
    int64         JSON numbers (proto3 JSON would print strings)
    enums         lowercase words without the type prefix: HEALTH_STATUS_HEALTHY → "healthy";
                  the *_UNSPECIFIED value prints as null
    timestamps    RFC 3339 UTC, e.g. "2024-01-15T10:30:00Z"
    bytes         base64

Parsing accepts those forms plus what proto3 JSON accepts (enum full names or
numbers, numeric strings for numbers), and ignores unknown keys. Every problem
is reported with the field's path, all at once.

Per message type, the field plan is computed once and cached.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from bridge.violations import FieldViolation

Json = Any
FD = FieldDescriptor

_INT_RANGES = {
    FD.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FD.CPPTYPE_UINT32: (0, 2**32 - 1),
    FD.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FD.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_WRAPPERS = {
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
_JSON_NATIVE = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any"}
_STRING_FORM = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}


# Deepest nesting of objects and lists accepted in free-form JSON fields (google.protobuf.Struct…).
MAX_JSON_DEPTH = 20


def json_depth(value: Json) -> int:
    """How deeply objects and lists nest in `value` (a scalar: 0, {"a": [1]}: 2), without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # deep enough to refuse: no need to walk further
            pending.extend((child, depth + 1) for child in children)
    return deepest


class ParseError(Exception):
    """The JSON does not fit the message; `violations` name each bad field."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = violations


def whole_numbers(value: Json) -> Json:
    """JSON values with whole floats as integers: Struct numbers are doubles on the wire, and a
    client that sent {"keep": 7} expects 7 back, not 7.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


# ---------------------------------------------------------------------------- enums


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@cache
def enum_words(enum: EnumDescriptor) -> tuple[dict[int, str | None], dict[str, int]]:
    """(number → word, accepted spelling → number) for an enum type."""
    prefix = _upper_snake(enum.name) + "_"
    to_word: dict[int, str | None] = {}
    from_word: dict[str, int] = {}
    for value in enum.values:
        short = value.name.removeprefix(prefix)
        word = None if short == "UNSPECIFIED" and value.number == 0 else short.lower()
        to_word.setdefault(value.number, word)
        for spelling in (short.lower(), short, value.name, value.name.lower()):
            from_word.setdefault(spelling, value.number)
    return to_word, from_word


# ------------------------------------------------------------------ message → JSON

Printer = Callable[[Any], Json]


def _printer(field: FieldDescriptor) -> Printer:
    """How to print one (non-repeated) value of `field`."""
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        return lambda value: message_to_json(value)
    if field.cpp_type == FD.CPPTYPE_ENUM:
        to_word = enum_words(field.enum_type)[0]
        return lambda value: to_word.get(value, value)
    if field.type == FD.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode()
    if field.cpp_type in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        return lambda value: value if math.isfinite(value) else None
    return lambda value: value


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    kind: str  # "map", "list", "presence", "oneof" or "plain"
    printer: Printer
    key_printer: Printer | None = None


def _is_real_oneof(field: FieldDescriptor) -> bool:
    oneof = field.containing_oneof
    return oneof is not None and not (oneof.name == f"_{field.name}" and len(oneof.fields) == 1)


@cache
def _plan(descriptor: Descriptor) -> tuple[_FieldPlan, ...]:
    plans = []
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            plans.append(_FieldPlan(field.name, "map", _printer(value_field), _printer(key_field)))
        elif field.is_repeated:
            plans.append(_FieldPlan(field.name, "list", _printer(field)))
        elif _is_real_oneof(field):
            plans.append(_FieldPlan(field.name, "oneof", _printer(field)))
        elif field.has_presence:
            plans.append(_FieldPlan(field.name, "presence", _printer(field)))
        else:
            plans.append(_FieldPlan(field.name, "plain", _printer(field)))
    return tuple(plans)


def message_to_json(message: Message) -> Json:
    """The JSON value (dict, or a string/number for well-known types) of a message."""
    descriptor = message.DESCRIPTOR
    full_name = descriptor.full_name
    if full_name in _STRING_FORM:
        return message.ToJsonString()
    if full_name in _WRAPPERS:
        return _printer(descriptor.fields_by_name["value"])(message.value)
    if full_name in _JSON_NATIVE:
        return whole_numbers(json_format.MessageToDict(message))
    out: dict[str, Json] = {}
    for plan in _plan(descriptor):
        value = getattr(message, plan.name)
        if plan.kind == "plain":
            out[plan.name] = plan.printer(value)
        elif plan.kind == "list":
            out[plan.name] = [plan.printer(item) for item in value]
        elif plan.kind == "map":
            key_printer = plan.key_printer or str
            out[plan.name] = {str(key_printer(key)): plan.printer(item) for key, item in value.items()}
        elif message.HasField(plan.name):
            out[plan.name] = plan.printer(value)
        elif plan.kind == "presence":
            out[plan.name] = None
    return out


# ------------------------------------------------------------------ JSON → message


def _scalar(field: FieldDescriptor, value: Json, path: str) -> Any:
    """Convert a JSON value for a non-message field, or raise ParseError."""
    cpp = field.cpp_type
    if cpp == FD.CPPTYPE_ENUM:
        from_word = enum_words(field.enum_type)[1]
        if isinstance(value, str) and value in from_word:
            return from_word[value]
        if isinstance(value, int) and not isinstance(value, bool) and field.enum_type.values_by_number.get(value):
            return value
        words = sorted({w for w in enum_words(field.enum_type)[0].values() if w})
        raise _violation(path, f"must be one of {', '.join(words)}")
    if cpp == FD.CPPTYPE_BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise _violation(path, "must be a boolean")
    if cpp in _INT_RANGES:
        return _integer(value, path, *_INT_RANGES[cpp])
    if cpp in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        if isinstance(value, bool):
            raise _violation(path, "must be a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _violation(path, "must be a number") from None
    if field.type == FD.TYPE_BYTES:
        if not isinstance(value, str):
            raise _violation(path, "must be a base64 string")
        padded = value + "=" * (-len(value) % 4)
        altchars = b"-_" if "-" in value or "_" in value else None  # accept the URL-safe alphabet too
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            raise _violation(path, "must be a base64 string") from None
    if isinstance(value, str):
        return value
    raise _violation(path, "must be a string")


def _integer(value: Json, path: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _violation(path, "must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise _violation(path, "must be an integer")
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _violation(path, "must be an integer") from None
    if not isinstance(value, int):
        raise _violation(path, "must be an integer")
    if not low <= value <= high:
        raise _violation(path, f"must be between {low} and {high}")
    return value


def _violation(path: str, message: str) -> ParseError:
    return ParseError([FieldViolation(field=path or "body", message=message)])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def json_to_message(data: Json, message: Message, path: str = "") -> None:
    """Merge a JSON value into `message`, collecting every violation into one ParseError."""
    descriptor = message.DESCRIPTOR
    full_name = descriptor.full_name
    if full_name in _STRING_FORM or full_name in _JSON_NATIVE or full_name in _WRAPPERS:
        _well_known(data, message, path)
        return
    if not isinstance(data, dict):
        raise _violation(path, "must be an object")
    violations: list[FieldViolation] = []
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key)
        if field is None or value is None:
            continue
        try:
            set_field(message, field, value, _join(path, key))
        except ParseError as error:
            violations.extend(error.violations)
    if violations:
        raise ParseError(violations)


def set_field(message: Message, field: FieldDescriptor, value: Json, path: str) -> None:
    """Set (or, for repeated fields, extend) one field from its JSON value."""
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        _set_map(getattr(message, field.name), field, value, path)
    elif field.is_repeated:
        if not isinstance(value, list):
            raise _violation(path, "must be a list")
        container = getattr(message, field.name)
        violations: list[FieldViolation] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            try:
                if field.cpp_type == FD.CPPTYPE_MESSAGE:
                    json_to_message(item, container.add(), item_path)
                else:
                    container.append(_scalar(field, item, item_path))
            except ParseError as error:
                violations.extend(error.violations)
        if violations:
            raise ParseError(violations)
    elif field.cpp_type == FD.CPPTYPE_MESSAGE:
        child = getattr(message, field.name)
        json_to_message(value, child, path)
        child.SetInParent()
    else:
        setattr(message, field.name, _scalar(field, value, path))


def _set_map(container: Any, field: FieldDescriptor, value: Json, path: str) -> None:
    if not isinstance(value, dict):
        raise _violation(path, "must be an object")
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    for key, item in value.items():
        item_path = f"{path}.{key}"
        converted_key = _scalar(key_field, key, item_path)
        if value_field.cpp_type == FD.CPPTYPE_MESSAGE:
            json_to_message(item, container[converted_key], item_path)
        else:
            container[converted_key] = _scalar(value_field, item, item_path)


def _well_known(data: Json, message: Message, path: str) -> None:
    full_name = message.DESCRIPTOR.full_name
    if full_name == "google.protobuf.Timestamp" and isinstance(data, (int, float)) and not isinstance(data, bool):
        try:
            message.FromNanoseconds(int(data * 1_000_000_000))
        except (ValueError, OverflowError) as error:  # beyond years 1-9999, or not a finite number
            raise _violation(path, "must be a time between the years 1 and 9999 (Unix seconds)") from error
        return
    if full_name in _WRAPPERS:
        message.value = _scalar(message.DESCRIPTOR.fields_by_name["value"], data, path)
        return
    if full_name in _JSON_NATIVE and json_depth(data) > MAX_JSON_DEPTH:
        # Refused here, by name: deeper values would break protobuf's nesting limit (about 32
        # objects, as a Struct holds each in three messages) and fail far from the request.
        raise _violation(path, f"must not nest objects and lists more than {MAX_JSON_DEPTH} levels deep")
    try:
        if full_name in _STRING_FORM:
            if not isinstance(data, str):
                raise ValueError("must be a string")
            message.FromJsonString(data)
        else:
            json_format.ParseDict(data, message)
    except (ValueError, json_format.ParseError) as error:
        expected = "an RFC 3339 timestamp" if full_name.endswith("Timestamp") else f"a valid {message.DESCRIPTOR.name}"
        raise _violation(path, f"must be {expected}") from error
