"""The HTTP bindings declared in the descriptors, read and validated once at start-up.

A binding is one (HTTP method, path template) of an RPC: its google.api.http rule or
one of the rule's additional_bindings, with the relais.options.v1.http behaviour that
applies to it. Every mistake a proto author can make (unknown field in a template or
`body`, duplicate route, behaviour for a binding that does not exist) fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import cast

import relais.v1
from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from bridge.httprule import PathTemplate, TemplateError

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# google.api.HttpBody: a response body in its own media type (a download when streamed).
HTTP_BODY = "google.api.HttpBody"
# A request field of this type receives the multipart file part of the same name.
UPLOADED_FILE = "relais.options.v1.UploadedFile"


def is_uploaded_file(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == UPLOADED_FILE


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    method: MethodDescriptor
    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    success_status: int
    envelope: options_pb2.JsonEnvelope | None
    set_cookies: tuple[options_pb2.SetCookie, ...]
    clear_cookies: tuple[str, ...]
    access: options_pb2.AccessRule
    # 0 for the rule itself, n for its n-th additional binding.
    index: int
    # For a server-streaming RPC: how its events are framed in the response body.
    stream_dialect: int = options_pb2.STREAM_DIALECT_UNSPECIFIED
    # Deadline of a unary call through the bridge, in seconds.
    timeout: float = 60.0
    # A bool request field that, when false, turns the stream into one JSON answer: the
    # `result_event` member of the stream's last message.
    stream_field: str = ""
    result_event: str = ""
    # Answer a JSON array of the events unless the request accepts text/event-stream.
    json_list: bool = False
    # (response field path, enum number, HTTP status): answered instead of success_status.
    status_when: tuple[tuple[str, int, int], ...] = ()
    # Largest request body, in bytes; 0: the bridge's default.
    max_body: int = 0
    # A bool field path of the request asking the framing for a last usage event.
    usage_field: str = ""
    # The JSON shape of this binding's errors (options_pb2.ErrorFormat).
    error_format: int = options_pb2.ERROR_FORMAT_UNSPECIFIED

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def upload(self) -> bool:
        """A client-streaming RPC: the request body is sent in pieces (see bridge/uploads.py)."""
        return bool(self.method.client_streaming)

    @property
    def full_method(self) -> str:
        """gRPC path, e.g. '/relais.v1.SystemService/GetHealth'."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return cast(type[Message], message_factory.GetMessageClass(self.method.input_type))

    @property
    def response_class(self) -> type[Message]:
        return cast(type[Message], message_factory.GetMessageClass(self.method.output_type))

    @property
    def route_name(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}" + (f".{self.index}" if self.index else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketBinding:
    """A WebSocket route serving a server-streaming RPC in one dialect."""

    method: MethodDescriptor
    path: str
    dialect: int

    @property
    def full_method(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def request_class(self) -> type[Message]:
        return cast(type[Message], message_factory.GetMessageClass(self.method.input_type))

    @property
    def response_class(self) -> type[Message]:
        return cast(type[Message], message_factory.GetMessageClass(self.method.output_type))

    @property
    def route_name(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}.ws"


def _check_framing(method: MethodDescriptor, dialect: int, transport: str, where: str) -> None:
    """The registered framing of `dialect` over `transport` fits the method's stream message."""
    from bridge.framings import FramingMismatch, framing_for  # the framings import this module

    try:
        framing_for(dialect, transport).check(method)
    except FramingMismatch as error:
        raise TemplateError(f"{method.full_name} {where}: {error}") from None


def compile_websockets(services: Iterable[ServiceDescriptor]) -> list[WebSocketBinding]:
    """The WebSocket routes declared by the services' stream options."""
    routes: dict[str, WebSocketBinding] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(options_pb2.stream):
                continue
            for route in options.Extensions[options_pb2.stream].websockets:
                if not method.server_streaming or method.client_streaming:
                    raise TemplateError(f"{method.full_name}: only server-streaming RPCs can be served on a WebSocket")
                _check_framing(method, route.dialect, "websocket", route.path)
                if not route.path.startswith("/") or route.path in routes:
                    raise TemplateError(f"{method.full_name}: WebSocket path {route.path!r} is invalid or taken")
                routes[route.path] = WebSocketBinding(method=method, path=route.path, dialect=route.dialect)
    return list(routes.values())


def contract_services(package: ModuleType = relais.v1) -> list[ServiceDescriptor]:
    """Every service of the generated package (importing its *_pb2 modules)."""
    services = []
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.endswith("_pb2"):
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            services.extend(module.DESCRIPTOR.services_by_name.values())
    return sorted(services, key=lambda service: service.full_name)


def compile_bindings(services: Iterable[ServiceDescriptor]) -> list[Binding]:
    """All bindings, most specific path first; raises TemplateError on any inconsistency."""
    bindings = [binding for service in services for method in service.methods for binding in _method_bindings(method)]
    seen: dict[tuple[str, str], str] = {}
    for binding in bindings:
        key = (binding.http_method, binding.template.regex.pattern)
        if key in seen:
            raise TemplateError(
                f"{binding.http_method} {binding.template.source} is bound by {seen[key]} and {binding.route_name}"
            )
        seen[key] = binding.route_name
    return sorted(bindings, key=lambda binding: binding.template.specificity)


def _rules(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for additional in rule.additional_bindings:
        if additional.additional_bindings:
            raise TemplateError("additional_bindings cannot nest")
        yield additional


def _method_bindings(method: MethodDescriptor) -> list[Binding]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    stream = options.Extensions[options_pb2.stream]
    dialect = stream.sse if options.HasExtension(options_pb2.stream) else 0
    _check_delivery_choice(method, stream)
    if method.client_streaming and (
        method.server_streaming or not any(is_uploaded_file(field) for field in method.input_type.fields)
    ):
        raise TemplateError(
            f"{method.full_name}: only uploads (a request with an UploadedFile field, one response) "
            "may be client-streaming over HTTP"
        )
    # A stream of google.api.HttpBody is one download: its pieces are the body, no framing.
    if method.server_streaming and method.output_type.full_name != HTTP_BODY:
        if not dialect:
            raise TemplateError(
                f"{method.full_name}: a server-streaming RPC needs a (relais.options.v1.stream).sse dialect"
            )
        _check_framing(method, dialect, "sse", "sse")
    if dialect and not method.server_streaming:
        raise TemplateError(f"{method.full_name}: stream framing on a unary RPC")
    behavior = options.Extensions[options_pb2.http]
    access = options.Extensions[options_pb2.access]
    per_binding = {(b.method.upper(), b.path): b for b in behavior.bindings}
    bindings = []
    for index, rule in enumerate(_rules(options.Extensions[annotations_pb2.http])):
        verb = rule.WhichOneof("pattern")
        if verb not in HTTP_METHODS:
            raise TemplateError(f"{method.full_name}: unsupported pattern {verb!r}")
        source = getattr(rule, verb)
        template = PathTemplate.parse(source)
        _check_fields(method, template, rule)
        override = per_binding.pop((verb.upper(), source), None)
        success = (override.success_status if override else 0) or behavior.success_status or 200
        envelope = override.envelope if override and override.HasField("envelope") else None
        error_format = (override.error_format if override else 0) or behavior.error_format
        bindings.append(
            Binding(
                method=method,
                http_method=verb.upper(),
                template=template,
                body=rule.body,
                response_body=rule.response_body,
                success_status=success,
                envelope=envelope,
                set_cookies=tuple(behavior.set_cookies),
                clear_cookies=tuple(behavior.clear_cookies),
                access=access,
                index=index,
                stream_dialect=dialect,
                timeout=float(behavior.timeout_seconds or 60),
                max_body=behavior.max_body_bytes,
                stream_field=stream.stream_field,
                result_event=stream.result_event,
                json_list=stream.json_list_unless_event_stream,
                status_when=_status_when(method, behavior),
                usage_field=stream.usage_field,
                error_format=error_format,
            )
        )
    if per_binding:
        raise TemplateError(f"{method.full_name}: http behaviour for unknown bindings {sorted(per_binding)}")
    return bindings


def resolve_field(descriptor: Descriptor, field_path: str) -> FieldDescriptor:
    """The field a dotted path names; KeyError if any step is missing."""
    field: FieldDescriptor | None = None
    current: Descriptor | None = descriptor
    for name in field_path.split("."):
        if current is None:
            raise KeyError(field_path)
        field = current.fields_by_name[name]
        current = field.message_type
    assert field is not None
    return field


def _check_fields(method: MethodDescriptor, template: PathTemplate, rule: http_pb2.HttpRule) -> None:
    where = f"{method.full_name} {template.source}"
    for variable in template.variables:
        try:
            field = resolve_field(method.input_type, variable.field_path)
        except KeyError:
            raise TemplateError(f"{where}: no field {variable.field_path!r} in {method.input_type.full_name}") from None
        if field.is_repeated or field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            raise TemplateError(f"{where}: path field {variable.field_path!r} must be a singular scalar")
    if rule.body not in ("", "*") and rule.body not in method.input_type.fields_by_name:
        raise TemplateError(f"{where}: body field {rule.body!r} not in {method.input_type.full_name}")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise TemplateError(f"{where}: response_body {rule.response_body!r} not in {method.output_type.full_name}")
    if rule.body and rule.WhichOneof("pattern") == "get":
        raise TemplateError(f"{where}: GET bindings take no body")


def _status_when(method: MethodDescriptor, behavior: options_pb2.HttpBehavior) -> tuple[tuple[str, int, int], ...]:
    """The compiled status_when rules: each names an enum field of the response and one of its values."""
    rules = []
    for rule in behavior.status_when:
        where = f"{method.full_name}: status_when {rule.field!r}"
        try:
            field = resolve_field(method.output_type, rule.field)
        except KeyError:
            raise TemplateError(f"{where} is not a field of {method.output_type.full_name}") from None
        value = field.enum_type.values_by_name.get(rule.value) if field.enum_type is not None else None
        if value is None or method.server_streaming or not 100 <= rule.status <= 599:
            raise TemplateError(f"{where}: needs a unary RPC, an enum field, one of its values and a status")
        rules.append((rule.field, value.number, rule.status))
    return tuple(rules)


def _check_delivery_choice(method: MethodDescriptor, stream: options_pb2.StreamBehavior) -> None:
    if stream.usage_field:
        try:
            usage = resolve_field(method.input_type, stream.usage_field)
        except KeyError:
            usage = None
        if usage is None or usage.type != FieldDescriptor.TYPE_BOOL or usage.is_repeated:
            raise TemplateError(f"{method.full_name}: usage_field {stream.usage_field!r} is not a bool of the request")
    if not (stream.stream_field or stream.result_event):
        return
    request, response = method.input_type, method.output_type
    field = request.fields_by_name.get(stream.stream_field)
    if field is None or field.type != FieldDescriptor.TYPE_BOOL:
        raise TemplateError(f"{method.full_name}: stream_field {stream.stream_field!r} is not a bool of the request")
    if not stream.result_event:
        from bridge.framings import FramingMismatch, SseFraming, sse_framing

        try:
            framing = sse_framing(stream.sse)
        except FramingMismatch as error:
            raise TemplateError(f"{method.full_name}: {error}") from None
        if type(framing).result is SseFraming.result:
            raise TemplateError(f"{method.full_name}: stream_field needs a result_event, or a framing with a result")
        return
    result = response.fields_by_name.get(stream.result_event)
    if result is None or result.message_type is None or result.containing_oneof is None:
        raise TemplateError(f"{method.full_name}: result_event {stream.result_event!r} is not a oneof message member")
