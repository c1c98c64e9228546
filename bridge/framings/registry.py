"""The registry of stream framings, as grpc-gateway's marshaler registry.

A framing turns the messages of a server-streaming RPC into one documented dialect: SSE
(`SseFraming`: frames for an HTTP body) or a WebSocket protocol (`WebSocketFraming`: serves
the socket, or, for a protocol with its own handshake such as Socket.IO, the whole route).
Each declares what it reads: `family`, the full name of the stream message it needs
(relais.v1.StreamEvent; None for any message), `needs`, the members of that message's oneof
it frames, `fields`, the stream message's other fields it reads, `request_fields`, the request
fields it sets, and `companions`, other RPCs of the same service it calls. The binding compiler
asks `check` for every binding and refuses one whose RPC does not fit; `openapi` (SSE) and
`describe` (WebSocket) document the framing's frames in /openapi.json.

Registering a framing (one module per framing is the convention):

    from bridge.framings.registry import SseFraming, register

    @register
    class MyFraming(SseFraming):
        dialect = options_pb2.STREAM_DIALECT_MY_DIALECT
        needs = frozenset({"token", "final", "error"})

        def frame(self, event): ...           # bytes, or None to send nothing
        def openapi(self, builder, binding): ...

then import the module in bridge/framings/__init__.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

if TYPE_CHECKING:
    from starlette.routing import BaseRoute
    from starlette.websockets import WebSocket

    from bridge.bindings import Binding, WebSocketBinding
    from bridge.upstream import Upstream

Schema = dict[str, Any]
EVENT_FAMILY = "relais.v1.StreamEvent"
KEEPALIVE = b": ping\n\n"


class FramingMismatch(Exception):
    """A binding whose RPC does not fit its framing."""


def event_oneof(descriptor: Descriptor) -> str | None:
    """The stream message's event oneof (its first real one)."""
    for oneof in descriptor.oneofs:
        if not (len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"):
            return str(oneof.name)
    return None


def companion(method: MethodDescriptor, name: str) -> tuple[str, type[Message], type[Message]]:
    """The gRPC path, request class and response class of the RPC `name` of `method`'s service."""
    sibling = method.containing_service.methods_by_name[name]
    request = message_factory.GetMessageClass(sibling.input_type)
    response = message_factory.GetMessageClass(sibling.output_type)
    return f"/{method.containing_service.full_name}/{name}", request, response


def event_kind(message: Message) -> str:
    """The set member of the message's event oneof ("message" when it has none)."""
    oneof = event_oneof(message.DESCRIPTOR)
    return (message.WhichOneof(oneof) if oneof else None) or "message"


class Framing(ABC):
    dialect: ClassVar[int]
    transport: ClassVar[str]
    # Full name of the stream message the framing reads; None: any message.
    family: ClassVar[str | None] = EVENT_FAMILY
    # Members of the family's oneof the framing frames.
    needs: ClassVar[frozenset[str]] = frozenset()
    # Other fields of the stream message it reads.
    fields: ClassVar[frozenset[str]] = frozenset()
    # Fields of the request message it sets.
    request_fields: ClassVar[frozenset[str]] = frozenset()
    # Other RPCs of the RPC's service it calls, by name.
    companions: ClassVar[frozenset[str]] = frozenset()

    def check(self, method: MethodDescriptor) -> None:
        """Raise FramingMismatch unless `method` is what this framing reads and calls."""
        output = method.output_type
        name = type(self).__name__
        if self.family is not None and output.full_name != self.family:
            raise FramingMismatch(f"{method.full_name}: {name} frames {self.family}, not {output.full_name}")
        oneof = event_oneof(output)
        members = {field.name for field in output.oneofs_by_name[oneof].fields} if oneof else set()
        if missing := self.needs - members:
            raise FramingMismatch(f"{method.full_name}: {name} needs oneof members {sorted(missing)}")
        if missing := self.fields - set(output.fields_by_name):
            raise FramingMismatch(f"{method.full_name}: {name} needs fields {sorted(missing)} of {output.full_name}")
        if missing := self.request_fields - set(method.input_type.fields_by_name):
            raise FramingMismatch(f"{method.full_name}: {name} sets request fields {sorted(missing)}")
        if missing := self.companions - set(method.containing_service.methods_by_name):
            raise FramingMismatch(f"{method.full_name}: {name} also calls {sorted(missing)} of the same service")


class SseFraming(Framing):
    """A framing of an HTTP response body as server-sent events."""

    transport = "sse"

    @abstractmethod
    def frame(self, event: Message) -> bytes | None:
        """The bytes sent for `event`, or None to send nothing."""

    def failure(self, body: dict[str, Any]) -> bytes:
        """The frame of a call that failed after the body began (the error body of bridge/errors)."""
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"

    def keepalive(self) -> bytes:
        """Sent while the stream waits (an SSE comment: clients ignore it, proxies see traffic)."""
        return KEEPALIVE

    def end(self) -> bytes:
        return b"data: [DONE]\n\n"

    def result(self, binding: Binding, event: Message) -> Any:
        """The one JSON body answered when the binding's stream_field is false: this event's, if it
        carries the result, else None."""
        return None

    def open(self, binding: Binding, request: Message) -> SseFraming:
        """The framing of one stream, for framings that keep state across its events (ids, what
        was already said); stateless framings are their own."""
        return self

    @abstractmethod
    def openapi(self, builder: Any, binding: Binding) -> Schema:
        """The OpenAPI response object of a binding framed this way."""


class WebSocketFraming(Framing):
    """A WebSocket protocol carrying a server-streaming RPC.

    Most protocols only `serve` a socket that the bridge's standard route accepted once the
    server admitted the handshake's credentials (bridge/sockets.py). A protocol with its own
    handshake (Socket.IO, an auth message after connecting) returns its whole route from
    `route` instead."""

    transport = "websocket"

    def route(self, binding: WebSocketBinding, upstream: Upstream, *, ping_interval: float) -> BaseRoute | None:
        """The route serving `binding`; None for the standard route, which calls `serve`."""
        return None

    async def serve(
        self,
        websocket: WebSocket,
        binding: WebSocketBinding,
        upstream: Upstream,
        metadata: list[tuple[str, str]],
        *,
        keepalive: float,
    ) -> None:
        """Serve an accepted socket until the client leaves."""
        raise NotImplementedError(f"{type(self).__name__} serves its own route")

    @abstractmethod
    def describe(self) -> Schema:
        """The socket's frames, {"in": schema, "out": schema}, for /openapi.json."""

    def http_responses(self) -> dict[str, Schema]:
        """Answers to plain HTTP requests on the path, for a protocol that also speaks HTTP."""
        return {}


_REGISTRY: dict[int, Framing] = {}
F = TypeVar("F", bound=type[Framing])


def register(cls: F) -> F:
    """Class decorator: make `cls()` the framing of its dialect."""
    if cls.dialect in _REGISTRY:
        raise ValueError(f"dialect {cls.dialect} already has {type(_REGISTRY[cls.dialect]).__name__}")
    _REGISTRY[cls.dialect] = cls()
    return cls


def framing_for(dialect: int, transport: str) -> Framing:
    """The registered framing of `dialect`; FramingMismatch if none, or not over `transport`."""
    found = _REGISTRY.get(dialect)
    if found is None or found.transport != transport:
        raise FramingMismatch(f"no {transport} framing is registered for stream dialect {dialect}")
    return found


def sse_framing(dialect: int) -> SseFraming:
    found = framing_for(dialect, "sse")
    assert isinstance(found, SseFraming)
    return found


def websocket_framing(dialect: int) -> WebSocketFraming:
    found = framing_for(dialect, "websocket")
    assert isinstance(found, WebSocketFraming)
    return found


def registered() -> dict[int, Framing]:
    return dict(_REGISTRY)
