"""Query-string (and form) parameters onto request message fields.

    ?limit=10&filter.active=true&tags=a&tags=b  →  limit: 10, filter { active: true }, tags: ["a", "b"]

Per HttpRule, parameters name fields by their dotted path; repeated fields take
the parameter once per value; a parameter naming no field is ignored.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from bridge.marshal import ParseError, json_to_message, set_field
from bridge.violations import FieldViolation

MAX_DEPTH = 8


def apply_params(message: Message, params: Iterable[tuple[str, str]], *, skip: Collection[str] = ()) -> None:
    """Set the fields the parameters name, except those under a `skip` path."""
    violations: list[FieldViolation] = []
    repeated: dict[str, list[str]] = {}
    for key, value in params:
        if key in skip or key.split(".")[0] in skip:
            continue
        target = _walk(message, key)
        if target is None:
            continue
        owner, field = target
        if value == "null" and _nullable(field):
            continue  # a form's spelling of JSON null: the field is not given
        try:
            if field.is_repeated and not _is_map(field):
                repeated.setdefault(key, []).append(value)
            elif field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                json_to_message(value, getattr(owner, field.name), key)
                getattr(owner, field.name).SetInParent()
            else:
                set_field(owner, field, value, key)
        except ParseError as error:
            violations.extend(error.violations)
    for key, values in repeated.items():
        owner, field = _walk(message, key) or (None, None)
        if owner is None or field is None:
            continue
        try:
            set_field(owner, field, values, key)
        except ParseError as error:
            violations.extend(error.violations)
    if violations:
        raise ParseError(violations)


def set_path_value(message: Message, field_path: str, value: str) -> None:
    """Set the (validated, scalar) field a path template variable names."""
    target = _walk(message, field_path)
    if target is None:  # compile_bindings guarantees the path exists
        raise ParseError([FieldViolation(field=field_path, message="unknown path parameter")])
    owner, field = target
    set_field(owner, field, value, field_path)


def _nullable(field: FieldDescriptor) -> bool:
    """Whether "null" can only mean "not given" for this field: it is not a plain string."""
    return not field.is_repeated and (field.has_presence or field.cpp_type != FieldDescriptor.CPPTYPE_STRING)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _walk(message: Message, path: str) -> tuple[Message, FieldDescriptor] | None:
    """The message owning the last field of `path`, and that field; None if unknown."""
    names = path.split(".")
    if len(names) > MAX_DEPTH:
        return None
    owner = message
    for name in names[:-1]:
        field = owner.DESCRIPTOR.fields_by_name.get(name)
        if field is None or field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE or field.is_repeated:
            return None
        owner = getattr(owner, name)
    field = owner.DESCRIPTOR.fields_by_name.get(names[-1])
    return (owner, field) if field is not None else None
