"""OpenAPI 3.1 document built from the same descriptors as the routes.

Proto comments (kept in relais/descriptors.binpb by `make gen`) become summaries
and descriptions; request and response schemas follow bridge.marshal's JSON
conventions exactly (snake_case, nullable messages, lowercase enum words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from relais.options.v1 import options_pb2

from bridge.bindings import HTTP_BODY, Binding, is_uploaded_file, resolve_field
from bridge.marshal import enum_words

FD = FieldDescriptor
Schema = dict[str, Any]

_INTEGER = {
    FD.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FD.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    FD.TYPE_UINT32: ("int32", 0, 2**32 - 1),
    FD.TYPE_FIXED32: ("int32", 0, 2**32 - 1),
    FD.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FD.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    FD.TYPE_UINT64: ("int64", 0, 2**64 - 1),
    FD.TYPE_FIXED64: ("int64", 0, 2**64 - 1),
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object"},
}
ERROR_SCHEMA: Schema = {
    "type": "object",
    "description": "The one error body of every route.",
    "required": ["detail", "code", "status", "timestamp", "request_id", "error"],
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "status": {"const": "error"},
        "timestamp": {"type": "string", "format": "date-time"},
        "request_id": {"type": "string"},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
                "timestamp": {"type": "string", "format": "date-time"},
                "request_id": {"type": "string"},
            },
        },
    },
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "cookieAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": "access_token",
        "description": "Unsafe methods also need the X-CSRF-Token header.",
    },
    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def load_comments() -> dict[str, str]:
    """Full proto name → its leading comment, from the generated descriptor set."""
    data = resources.files("relais").joinpath("descriptors.binpb").read_bytes()
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(data)
    comments: dict[str, str] = {}
    for file in descriptor_set.file:
        names = _names_by_path(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name and location.leading_comments.strip():
                comments[name] = "\n".join(line.strip() for line in location.leading_comments.strip().splitlines())
    return comments


def _names_by_path(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """SourceCodeInfo paths of a file's declarations → their full names."""
    names: dict[tuple[int, ...], str] = {}
    prefix = file.package

    def message(proto: descriptor_pb2.DescriptorProto, path: tuple[int, ...], scope: str) -> None:
        full = f"{scope}.{proto.name}"
        names[path] = full
        for i, field in enumerate(proto.field):
            names[(*path, 2, i)] = f"{full}.{field.name}"
        for i, nested in enumerate(proto.nested_type):
            message(nested, (*path, 3, i), full)
        for i, enum in enumerate(proto.enum_type):
            enumeration(enum, (*path, 4, i), full)

    def enumeration(proto: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], scope: str) -> None:
        names[path] = f"{scope}.{proto.name}"

    for i, proto in enumerate(file.message_type):
        message(proto, (4, i), prefix)
    for i, enum in enumerate(file.enum_type):
        enumeration(enum, (5, i), prefix)
    for i, service in enumerate(file.service):
        names[(6, i)] = f"{prefix}.{service.name}"
        for j, method in enumerate(service.method):
            names[(6, i, 2, j)] = f"{prefix}.{service.name}.{method.name}"
    return names


class SchemaBuilder:
    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Schema] = {}

    def message(self, descriptor: Descriptor) -> Schema:
        """A $ref to the message's component schema (built on first use)."""
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name.startswith("google.protobuf.") and descriptor.full_name.endswith("Value"):
            return self.scalar(descriptor.fields_by_name["value"])
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder: breaks recursion
            properties = {field.name: self.field(field) for field in descriptor.fields}
            schema: Schema = {"type": "object", "properties": properties}
            if name in self.comments:
                schema["description"] = self.comments[name]
            self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def scalar(self, field: FieldDescriptor) -> Schema:
        if field.cpp_type == FD.CPPTYPE_MESSAGE:
            return self.message(field.message_type)
        if field.cpp_type == FD.CPPTYPE_ENUM:
            words = [w for w in enum_words(field.enum_type)[0].values() if w]
            return {"type": "string", "enum": words}
        if field.type in _INTEGER:
            fmt, low, high = _INTEGER[field.type]
            return {"type": "integer", "format": fmt, "minimum": low, "maximum": high}
        if field.cpp_type in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
            return {"type": "number"}
        if field.cpp_type == FD.CPPTYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FD.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64", "pattern": r"^[A-Za-z0-9+/_-]*={0,2}$"}
        return {"type": "string"}

    def field(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            schema: Schema = {
                "type": "object",
                "additionalProperties": self.scalar(field.message_type.fields_by_name["value"]),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self.scalar(field)}
        else:
            schema = self.scalar(field)
            nullable = field.has_presence or (
                field.cpp_type == FD.CPPTYPE_ENUM and enum_words(field.enum_type)[0].get(0, "") is None
            )
            if nullable:
                schema = {"anyOf": [schema, {"type": "null"}]}
        comment = self.comments.get(field.full_name)
        if comment:
            schema = {**schema, "description": comment}
        return schema


def _query_parameters(
    builder: SchemaBuilder, descriptor: Descriptor, skip: set[str], prefix: str = "", depth: int = 0
) -> list[Schema]:
    parameters: list[Schema] = []
    for field in descriptor.fields:
        name = f"{prefix}{field.name}"
        if name in skip or (field.name in skip and not prefix):
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.cpp_type == FD.CPPTYPE_MESSAGE and not is_map and field.message_type.full_name not in _WELL_KNOWN:
            if not field.is_repeated and depth < 2:
                parameters += _query_parameters(builder, field.message_type, skip, f"{name}.", depth + 1)
            continue
        if is_map:
            continue
        schema = {"type": "array", "items": builder.scalar(field)} if field.is_repeated else builder.scalar(field)
        parameter: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
        if field.full_name in builder.comments:
            parameter["description"] = builder.comments[field.full_name]
        parameters.append(parameter)
    return parameters


def _operation(builder: SchemaBuilder, binding: Binding, names: tuple[str, ...]) -> Schema:
    method = binding.method
    request = method.input_type
    comment = builder.comments.get(method.full_name, "")
    operation: Schema = {
        "operationId": binding.route_name.replace(".", "_"),
        "tags": [method.containing_service.name.removesuffix("Service")],
        "summary": comment.split("\n")[0] if comment else method.name,
        "description": comment,
        "parameters": [],
        "responses": {"default": {"$ref": "#/components/responses/Error"}},
    }
    for variable, name in zip(binding.template.variables, names, strict=True):
        field = resolve_field(request, variable.field_path)
        operation["parameters"].append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": builder.scalar(field),
                "description": f"Sets `{variable.field_path}`.",
            }
        )
    skip = {v.field_path for v in binding.template.variables}
    if binding.body != "*":
        if binding.body:
            skip.add(binding.body)
        operation["parameters"] += _query_parameters(builder, request, skip)
    if binding.body:
        schema = (
            builder.message(request) if binding.body == "*" else builder.field(request.fields_by_name[binding.body])
        )
        content: Schema = {"application/json": {"schema": schema}}
        if binding.body == "*" and (form := _multipart_schema(builder, request)) is not None:
            # Files travel as multipart parts; JSON (the file's bytes in base64) still works.
            content = {"multipart/form-data": {"schema": form}, **content}
        elif binding.body == "*" and _is_flat(request):
            # Form encoding has no notation for nested objects: offered for flat messages only.
            content["application/x-www-form-urlencoded"] = {"schema": schema}
        operation["requestBody"] = {"required": False, "content": content}
    operation["responses"][str(binding.success_status)] = _success(builder, binding)
    if binding.access.public:
        operation["security"] = []
    else:
        operation["security"] = [{"bearerAuth": []}, {"cookieAuth": []}, {"apiKeyAuth": []}]
    return operation


FOYERGPT_SSE = options_pb2.STREAM_DIALECT_FOYERGPT_SSE


def _multipart_schema(builder: SchemaBuilder, request: Descriptor) -> Schema | None:
    """A form for a request with UploadedFile fields: those as binary parts, the rest as values."""
    files = [field for field in request.fields if is_uploaded_file(field)]
    if not files:
        return None
    properties: Schema = {}
    for field in request.fields:
        if field in files:
            properties[field.name] = {"type": "string", "format": "binary"}
        elif field.cpp_type != FD.CPPTYPE_MESSAGE:
            properties[field.name] = builder.field(field)
    return {"type": "object", "properties": properties, "required": [field.name for field in files]}


def _is_flat(descriptor: Descriptor) -> bool:
    """Every field is a scalar, an enum or a list of them."""
    return all(field.cpp_type != FD.CPPTYPE_MESSAGE for field in descriptor.fields)


def _success(builder: SchemaBuilder, binding: Binding) -> Schema:
    output = binding.method.output_type
    if binding.success_status == 204:
        return {"description": "No content"}
    if output.full_name == HTTP_BODY:
        return {"description": "Raw content", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    if binding.streaming:
        content: Schema = {"text/event-stream": {"schema": _sse_event(builder.message(output))}}
        if binding.stream_field:
            # The same route answers one JSON body (the result event) when the request's flag is off.
            result = output.fields_by_name[binding.result_event].message_type
            content["application/json"] = {"schema": builder.message(result)}
            return {
                "description": f"One JSON body, or server-sent events when `{binding.stream_field}` is true",
                "content": content,
            }
        return {"description": "Server-sent events, then `data: [DONE]`", "content": content}
    schema = (
        builder.field(output.fields_by_name[binding.response_body])
        if binding.response_body
        else builder.message(output)
    )
    if binding.envelope is not None:
        properties: Schema = {binding.envelope.data_field: schema}
        properties.update({key: {"const": value} for key, value in binding.envelope.constants.items()})
        schema = {"type": "object", "properties": properties}
    return {"description": "Success", "content": {"application/json": {"schema": schema}}}


def _sse_event(message: Schema) -> Schema:
    """One server-sent event (before OpenAPI 3.2, a text/event-stream `schema` describes each event):
    `event: <oneof member>`, `id: <sequence>`, `data: <message JSON>` (or the error body when the
    call fails without an error event), and finally `data: [DONE]`."""
    payload = {"anyOf": [message, {"$ref": "#/components/schemas/ErrorBody"}]}
    return {
        "oneOf": [
            {"type": "object", "required": ["data"], "properties": {"data": {"const": "[DONE]"}}},
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string"},
                    "id": {"type": "string"},
                    "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": payload},
                },
            },
        ]
    }


def _foyergpt_event() -> Schema:
    """FoyerGPT's events: `data: {"token", "message_id"}`, `data: {"error", "code"}`, `data: [DONE]`."""
    payload = {
        "anyOf": [
            {
                "type": "object",
                "required": ["token", "message_id"],
                "properties": {"token": {"type": "string"}, "message_id": {"type": "integer"}},
            },
            {
                "type": "object",
                "required": ["error", "code"],
                "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
            },
        ]
    }
    return {
        "oneOf": [
            {"type": "object", "required": ["data"], "properties": {"data": {"const": "[DONE]"}}},
            {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "not": {"const": "[DONE]"},
                        "contentMediaType": "application/json",
                        "contentSchema": payload,
                    }
                },
            },
        ]
    }


def build_openapi(
    bindings: Sequence[Binding], *, title: str, version: str, extra_paths: Iterable[tuple[str, str, Schema]] = ()
) -> Schema:
    """The OpenAPI document for the bindings, plus hand-declared (path, method, operation) entries."""
    builder = SchemaBuilder(load_comments())
    paths: dict[str, dict[str, Schema]] = {}
    names_by_shape: dict[str, tuple[str, ...]] = {}
    for binding in bindings:
        template = binding.template
        names = names_by_shape.setdefault(template.shape, template.parameter_names)
        operation = _operation(builder, binding, names)
        paths.setdefault(template.openapi_path(names), {})[binding.http_method.lower()] = operation
    for path, method, operation in extra_paths:
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Routes derived from the Relais protobuf contract (relais.v1).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {**dict(sorted(builder.components.items())), "ErrorBody": ERROR_SCHEMA},
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
