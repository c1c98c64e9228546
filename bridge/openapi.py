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

from bridge.bindings import HTTP_BODY, Binding, WebSocketBinding, is_uploaded_file, resolve_field
from bridge.errors import OPENAI
from bridge.framings import sse_framing, websocket_framing
from bridge.framings.openai import ERROR as OPENAI_ERROR_SCHEMA
from bridge.marshal import MAX_JSON_DEPTH, enum_words

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
    "google.protobuf.Struct": {
        "type": "object",
        "description": f"Objects and lists nested at most {MAX_JSON_DEPTH} deep.",
    },
    "google.protobuf.Value": {"description": f"Objects and lists nested at most {MAX_JSON_DEPTH} deep."},
    "google.protobuf.ListValue": {
        "type": "array",
        "description": f"Objects and lists nested at most {MAX_JSON_DEPTH} deep.",
    },
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
# The default response of a binding, by its relais.options.v1.ErrorFormat.
ERROR_RESPONSES = {0: "Error", OPENAI: "OpenAIError"}
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
    return comments_of(resources.files("relais").joinpath("descriptors.binpb").read_bytes())


def comments_of(data: bytes) -> dict[str, str]:
    """Full proto name → its leading comment, from a FileDescriptorSet with source info."""
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
            required = [field.name for field in descriptor.fields if bounds_of(field).required]
            if required:
                schema["required"] = required
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
            schema = bounded({"type": "array", "items": self.scalar(field)}, field)
        else:
            schema = bounded(self.scalar(field), field)
            nullable = not bounds_of(field).required and (
                field.has_presence
                or (field.cpp_type == FD.CPPTYPE_ENUM and enum_words(field.enum_type)[0].get(0, "") is None)
            )
            if nullable:
                schema = {"anyOf": [schema, {"type": "null"}]}
        comment = self.comments.get(field.full_name)
        if comment:
            schema = {**schema, "description": comment}
        return schema


# A required string holds more than white space (the server strips what it is given).
NOT_BLANK = r"\S"


def bounds_of(field: FieldDescriptor) -> options_pb2.FieldBounds:
    return field.GetOptions().Extensions[options_pb2.bounds]


def bounded(schema: Schema, field: FieldDescriptor) -> Schema:
    """`schema` with the limits the server enforces on `field` (relais.options.v1.bounds; see
    server/bounds.py). A field left at its zero value counts as not given, so unless it is
    required the zero value ("", 0, []) stays valid."""
    options = field.GetOptions()
    if not options.HasExtension(options_pb2.bounds):
        return schema
    bounds = options.Extensions[options_pb2.bounds]
    schema = dict(schema)
    if field.is_repeated:
        if bounds.HasField("max_length"):
            schema["maxItems"] = bounds.max_length
        if bounds.required:
            schema["minItems"] = max(1, bounds.min_length)
        schema["items"] = _value_bounds(dict(schema["items"]), bounds, required=True, field=field)
        return schema
    return _value_bounds(schema, bounds, required=bounds.required, field=field)


def _value_bounds(schema: Schema, bounds: options_pb2.FieldBounds, *, required: bool, field: FieldDescriptor) -> Schema:
    if schema.get("type") == "string":
        if bounds.HasField("max_length") and not field.is_repeated:
            schema["maxLength"] = bounds.max_length
        # "" counts as not given, except where presence is tracked (an `optional` field set to "").
        given_when_empty = required or field.has_presence
        if required and not field.is_repeated:
            schema["minLength"] = max(1, bounds.min_length)
        elif given_when_empty and bounds.HasField("min_length"):
            schema["minLength"] = bounds.min_length
        if bounds.pattern:
            schema["pattern"] = f"^(?:{bounds.pattern})$" if given_when_empty else f"^(?:{bounds.pattern})?$"
        elif required and not field.is_repeated:
            schema["pattern"] = NOT_BLANK
        if bounds.one_of:
            schema["enum"] = [*bounds.one_of] if given_when_empty else ["", *bounds.one_of]
    elif schema.get("type") in ("integer", "number"):
        zero_allowed = not required and not field.has_presence
        if bounds.HasField("minimum"):
            minimum = min(bounds.minimum, 0) if zero_allowed else bounds.minimum
            schema["minimum"] = int(minimum) if schema["type"] == "integer" else minimum
        if bounds.HasField("maximum"):
            maximum = max(bounds.maximum, 0) if zero_allowed else bounds.maximum
            schema["maximum"] = int(maximum) if schema["type"] == "integer" else maximum
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
        schema = bounded(schema, field)
        required = bounds_of(field).required
        parameter: Schema = {"name": name, "in": "query", "required": required, "schema": schema}
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
        "responses": {"default": {"$ref": f"#/components/responses/{ERROR_RESPONSES[binding.error_format]}"}},
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
        body_message = request if binding.body == "*" else request.fields_by_name[binding.body].message_type
        needed = body_message is not None and any(bounds_of(f).required for f in body_message.fields)
        operation["requestBody"] = {"required": needed, "content": content}
    operation["responses"][str(binding.success_status)] = _success(builder, binding)
    if binding.method.GetOptions().Extensions[options_pb2.idempotency].key:
        _idempotency(operation, str(binding.success_status))
    for path, value, status in binding.status_when:
        word = enum_words(resolve_field(method.output_type, path).enum_type)[0][value]
        operation["responses"][str(status)] = {
            **_success(builder, binding),
            "description": f"The same body, when `{path}` is `{word}`",
        }
    if binding.access.public:
        operation["security"] = []
    else:
        operation["security"] = [{"bearerAuth": []}, {"cookieAuth": []}, {"apiKeyAuth": []}]
    return operation


IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "A unique key (a UUID) naming this request, so that retrying it never runs it twice: a retry "
    "with the same key and body gets the first answer again (header `Idempotent-Replayed: true`); the same key "
    "with another body is a 422 (IDEMPOTENCY_KEY_REUSED); a retry while the first runs is a 409 "
    "(IDEMPOTENCY_KEY_IN_USE); a retry after a commit cut off by a lost database connection "
    "(503 COMMIT_OUTCOME_UNKNOWN) runs again if nothing was saved, else is a 409 (IDEMPOTENT_REQUEST_SAVED) "
    "naming what was. Keys are private to their caller and kept 24 hours.",
}


def _idempotency(operation: Schema, success: str) -> None:
    """Document the Idempotency-Key header of an RPC that honours it (relais.options.v1.idempotency)."""
    operation["parameters"].append(IDEMPOTENCY_KEY)
    replayed = {"description": "`true` when the answer is the stored one of an earlier request with the same key"}
    operation["responses"][success].setdefault("headers", {})["Idempotent-Replayed"] = {
        **replayed,
        "schema": {"type": "string", "enum": ["true"]},
    }
    for status, meaning in (
        ("409", "The key's first request is still running, or saved without an answer"),
        ("422", "The key was used with a different request"),
    ):
        operation["responses"][status] = {"description": meaning, "$ref": "#/components/responses/Error"}


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
        response = sse_framing(binding.stream_dialect).openapi(builder, binding)
        if binding.json_list:
            events = {"type": "array", "items": builder.message(output)}
            response = {
                "description": "A JSON array of the events; server-sent events with `Accept: text/event-stream`: "
                + response["description"],
                "content": {"application/json": {"schema": events}, **response["content"]},
            }
        return response
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


def _websocket_operation(binding: WebSocketBinding) -> Schema:
    """A WebSocket route as a GET (the upgrade) whose frames its framing describes."""
    framing = websocket_framing(binding.dialect)
    frames = framing.describe()
    return {
        "operationId": binding.route_name.replace(".", "_"),
        "tags": [binding.method.containing_service.name.removesuffix("Service")],
        "summary": f"WebSocket serving {binding.method.name}",
        "description": (framing.__doc__ or "").strip(),
        "parameters": [{"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}],
        "responses": {
            "101": {"description": "Switching protocols: JSON text frames as `x-frames` describes"},
            **framing.http_responses(),
            "default": {"$ref": "#/components/responses/Error"},
        },
        "x-websocket": True,
        "x-frames": frames,
    }


def build_openapi(
    bindings: Sequence[Binding],
    *,
    title: str,
    version: str,
    extra_paths: Iterable[tuple[str, str, Schema]] = (),
    websockets: Sequence[WebSocketBinding] = (),
    comments: dict[str, str] | None = None,
) -> Schema:
    """The OpenAPI document for the bindings, plus hand-declared (path, method, operation) entries.
    `comments` adds descriptions of declarations outside Relais' contract (plugins')."""
    builder = SchemaBuilder({**load_comments(), **(comments or {})})
    paths: dict[str, dict[str, Schema]] = {}
    names_by_shape: dict[str, tuple[str, ...]] = {}
    for binding in bindings:
        template = binding.template
        names = names_by_shape.setdefault(template.shape, template.parameter_names)
        operation = _operation(builder, binding, names)
        paths.setdefault(template.openapi_path(names), {})[binding.http_method.lower()] = operation
    for path, method, operation in extra_paths:
        paths.setdefault(path, {})[method] = operation
    for socket in websockets:
        # Under its own key when the path also has an HTTP GET (OpenAPI has no WebSocket verb).
        verb = "get" if "get" not in paths.get(socket.path, {}) else "x-websocket"
        paths.setdefault(socket.path, {})[verb] = _websocket_operation(socket)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Routes derived from the Relais protobuf contract (relais.v1).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {
                **dict(sorted(builder.components.items())),
                "ErrorBody": ERROR_SCHEMA,
                "OpenAIErrorBody": OPENAI_ERROR_SCHEMA,
            },
            "responses": {
                "Error": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                },
                "OpenAIError": {
                    "description": "Error, in OpenAI's shape",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIErrorBody"}}},
                },
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
