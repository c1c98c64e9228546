"""The route table compiled from the descriptors, and the one generic transcoding path.

Each binding becomes a `ProtoRoute`; serving a request only runs the compiled plan:
    HTTP request ─► request message (body, query, path) ─► unary RPC ─► JSON / HttpBody response
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import orjson
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from bridge.bindings import HTTP_BODY, Binding, is_uploaded_file
from bridge.errors import error_response, rpc_error_response, validation_response
from bridge.framings import SseFraming, sse_framing
from bridge.handshake import FORWARDED_HEADERS, TEMPLATE_KEY, request_id_of
from bridge.marshal import ParseError, json_to_message, message_to_json
from bridge.query import apply_params, set_path_value
from bridge.streams import Pump, first_message, sse_response
from bridge.uploads import MAX_FORM_FIELDS, MAX_FORM_FILES, UploadRefused, is_multipart, read_upload
from bridge.upstream import Upstream

# Response metadata passed back as headers besides x-*: when to retry, and that an answer is a replay.
PASSED_BACK = ("retry-after", "idempotent-replayed")
# Headers of a download the server sends as initial metadata.
DOWNLOAD_HEADERS = ("content-disposition", "content-length")
# Every raw body (a document, an export) is data, never a page of this origin: no type sniffing,
# and HTML or SVG opened directly runs sandboxed, without scripts, cookies or this origin.
DOWNLOAD_SAFETY = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'"}


class BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Transcoder:
    """Runs one binding for one request."""

    def __init__(
        self, upstream: Upstream, *, max_body_bytes: int, cookie_secure: bool = False, keepalive: float = 15.0
    ) -> None:
        self._upstream = upstream
        self._max_body = max_body_bytes
        self._cookie_secure = cookie_secure
        self._keepalive = keepalive

    async def __call__(self, binding: Binding, request: Request, path_params: dict[str, str]) -> Response:
        request_id = request_id_of(request.scope)
        if binding.upload and is_multipart(request):
            return await self._upload(binding, request, path_params, request_id)
        try:
            message = await self._request_message(binding, request, path_params)
        except ParseError as error:
            return validation_response(error.violations, request_id, binding.error_format)
        except BodyError as error:
            return error_response(
                error.status,
                code=error.code,
                message=error.message,
                request_id=request_id,
                error_format=binding.error_format,
            )
        if binding.streaming:
            return await self._stream(binding, message, request, request_id)
        metadata = self._metadata(request, request_id)
        if binding.upload:
            call = self._upstream.client_stream(binding)(_one(message), metadata=metadata, timeout=binding.timeout)
            return await self._respond(binding, call, request_id)
        call = self._upstream.unary(binding)(message, metadata=metadata, timeout=binding.timeout)
        return await self._respond(binding, call, request_id)

    async def _respond(self, binding: Binding, call: Any, request_id: str = "") -> Response:
        """The unary answer of `call` (or its error) as the binding renders it."""
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            return _failed(binding, error, request_id)
        headers = _headers(await call.initial_metadata(), await call.trailing_metadata())
        return _render(binding, response, headers, cookie_secure=self._cookie_secure)

    async def _upload(
        self, binding: Binding, request: Request, path_params: dict[str, str], request_id: str
    ) -> Response:
        """A multipart upload into a client-streaming RPC, streamed from the spooled form (bridge/uploads.py)."""
        try:
            upload = await read_upload(binding, request, path_params, limit=binding.max_body or self._max_body)
        except UploadRefused as refused:
            return error_response(refused.status, code=refused.code, message=refused.message, request_id=request_id)
        except ParseError as error:
            return validation_response(error.violations, request_id)
        try:
            metadata = self._metadata(request, request_id)
            call = self._upstream.client_stream(binding)(upload.messages(), metadata=metadata, timeout=binding.timeout)
            return await self._respond(binding, call, request_id)
        finally:
            await upload.close()

    async def _stream(self, binding: Binding, message: Message, request: Request, request_id: str) -> Response:
        # No deadline: a generation lasts as long as it lasts; the client ends it by leaving.
        call = self._upstream.server_stream(binding)(message, metadata=self._metadata(request, request_id))
        if binding.stream_field and not getattr(message, binding.stream_field):
            framing = sse_framing(binding.stream_dialect).open(binding, message)
            return await self._whole(binding, framing, call, request_id)
        if binding.json_list and "text/event-stream" not in request.headers.get("accept", ""):
            return await self._json_list(binding, call, request_id)
        if binding.method.output_type.full_name == HTTP_BODY:
            try:
                first = await first_message(call)
            except grpc.aio.AioRpcError as error:
                return _failed(binding, error, request_id)
            return _download(call, first, await call.initial_metadata(), binding.success_status)
        framing = sse_framing(binding.stream_dialect).open(binding, message)
        return await sse_response(Pump(call), binding, framing, _headers, request_id, self._keepalive)

    async def _whole(self, binding: Binding, framing: SseFraming, call: Any, request_id: str) -> Response:
        """The stream read to its end, answered as one JSON body: the framing's result."""
        result: Any = None
        try:
            async for event in call:
                found = framing.result(binding, event)
                result = result if found is None else found
        except grpc.aio.AioRpcError as error:
            return _failed(binding, error, request_id)
        finally:
            call.cancel()
        if result is None:
            return error_response(
                502,
                code="NO_RESULT",
                message="The stream ended without a result",
                request_id=request_id,
                error_format=binding.error_format,
            )
        return _json(result, binding.success_status, _headers(await call.initial_metadata()))

    async def _json_list(self, binding: Binding, call: Any, request_id: str) -> Response:
        """The stream read to its end, answered as a JSON array of its events."""
        try:
            events = [message_to_json(event) async for event in call]
        except grpc.aio.AioRpcError as error:
            return _failed(binding, error, request_id)
        finally:
            call.cancel()
        return _json(events, binding.success_status, _headers(await call.initial_metadata()))

    async def _request_message(self, binding: Binding, request: Request, path_params: dict[str, str]) -> Message:
        message = binding.request_class()
        if binding.body:
            target = message if binding.body == "*" else getattr(message, binding.body)
            # An upload's JSON form is held whole: the usual limit, not the upload's.
            limit = self._max_body if binding.upload else binding.max_body or self._max_body
            await self._read_body(request, target, binding.body, limit)
        if binding.body != "*":
            skip = {*path_params, binding.body} if binding.body else set(path_params)
            apply_params(message, request.query_params.multi_items(), skip=skip)
        for field_path, value in path_params.items():
            set_path_value(message, field_path, value)
        return message

    async def _read_body(self, request: Request, target: Any, body_field: str, limit: int) -> None:
        raw = await self._bounded_body(request, limit)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        prefix = "" if body_field == "*" else body_field
        if not raw.strip():
            return
        if content_type in ("", "application/json") or content_type.endswith("+json"):
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise BodyError(400, "BAD_REQUEST", f"Malformed JSON body: {error}") from None
            if data is not None and isinstance(target, Message):
                json_to_message(data, target, prefix)
            return
        if content_type == "application/x-www-form-urlencoded" and isinstance(target, Message):
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            apply_params(target, pairs)
            return
        if content_type == "multipart/form-data" and isinstance(target, Message):
            await _read_form(request, raw, target)
            return
        raise BodyError(415, "UNSUPPORTED_MEDIA_TYPE", f"Content type {content_type!r} is not accepted here; send JSON")

    async def _bounded_body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _metadata(self, request: Request, request_id: str) -> list[tuple[str, str]]:
        metadata = [("x-request-id", request_id), ("x-http-method", request.method)]
        metadata += self._upstream.forwarding.metadata(request.scope)
        for name, key in FORWARDED_HEADERS.items():
            value = request.headers.get(name)
            if value and value.isascii() and value.isprintable():
                metadata.append((key, value))
        return metadata


async def _read_form(request: Request, raw: bytes, target: Message) -> None:
    """A multipart form onto the request: file parts into UploadedFile fields of the same name,
    the other parts as query parameters would be."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    except Exception as error:  # starlette raises MultiPartException or HTTPException for bad forms
        raise BodyError(400, "BAD_REQUEST", f"Malformed multipart body: {getattr(error, 'detail', error)}") from None
    try:
        pairs: list[tuple[str, str]] = []
        for name, value in form.multi_items():
            if isinstance(value, str):
                pairs.append((name, value))
                continue
            field = target.DESCRIPTOR.fields_by_name.get(name)
            if field is None or not is_uploaded_file(field):
                raise BodyError(400, "BAD_REQUEST", f"Unexpected file part {name!r}")
            uploaded = getattr(target, name)
            uploaded.filename = value.filename or ""
            uploaded.content_type = value.content_type or ""
            uploaded.data = await value.read()
        apply_params(target, pairs)
    finally:
        await form.close()


async def _one(message: Message) -> AsyncIterator[Message]:
    yield message


def _download(call: Any, first: Message | None, metadata: Any, status: int) -> Response:
    """A stream of google.api.HttpBody as one response body, typed by its first piece."""
    headers = {key: value for key, value in metadata or () if key in DOWNLOAD_HEADERS and isinstance(value, str)}
    headers.update(DOWNLOAD_SAFETY)

    async def body() -> AsyncIterator[bytes]:
        try:
            message = first
            while message is not None:
                yield message.data
                message = await first_message(call)
        finally:
            call.cancel()

    media_type = (first.content_type if first is not None else "") or "application/octet-stream"
    return StreamingResponse(body(), status_code=status, media_type=media_type, headers=headers)


def _failed(binding: Binding, error: grpc.aio.AioRpcError, request_id: str) -> Response:
    headers = _headers(error.initial_metadata(), error.trailing_metadata())
    return rpc_error_response(error, request_id, headers, binding.error_format)


def _json(payload: Any, status: int, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _headers(*metadata: Any) -> dict[str, str]:
    """Server metadata the HTTP client should see (x-ratelimit-*, …) as headers."""
    headers: dict[str, str] = {}
    for pairs in metadata:
        for key, value in pairs or ():
            if (key.startswith("x-") or key in PASSED_BACK) and key != "x-request-id" and isinstance(value, str):
                headers[key] = value
    return headers


def _render(binding: Binding, response: Message, headers: dict[str, str], *, cookie_secure: bool) -> Response:
    if response.DESCRIPTOR.full_name == HTTP_BODY:
        return Response(
            response.data,
            status_code=binding.success_status,
            media_type=response.content_type or "application/octet-stream",
            headers={**headers, **DOWNLOAD_SAFETY},
        )
    status = next(
        (status for path, value, status in binding.status_when if _field(response, path) == value),
        binding.success_status,
    )
    if status == 204:
        result = Response(status_code=204, headers=headers)
    else:
        payload = message_to_json(response)
        if binding.response_body:
            payload = payload[binding.response_body]
        if binding.envelope is not None:
            payload = {binding.envelope.data_field: payload, **dict(binding.envelope.constants)}
        result = Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)
    for cookie in binding.set_cookies:
        _set_cookie(result, cookie, response, secure=cookie_secure)
    for name in binding.clear_cookies:
        result.delete_cookie(name, path="/", httponly=True, samesite="lax")
    return result


def _field(message: Message, path: str) -> Any:
    value: Any = message
    for name in path.split("."):
        value = getattr(value, name)
    return value


# RFC 6265 cookie-octets, minus '%' (used for escaping everything else).
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def _set_cookie(response: Response, cookie: Any, message: Message, *, secure: bool) -> None:
    value = urllib.parse.quote(str(_field(message, cookie.field)), safe=_COOKIE_SAFE)
    if not value:
        return
    max_age = int(_field(message, cookie.max_age_field)) if cookie.max_age_field else None
    response.set_cookie(
        cookie.name,
        value,
        max_age=max_age or None,
        path=cookie.path or "/",
        secure=cookie.secure or secure,
        httponly=cookie.http_only,
        samesite=(cookie.same_site or "lax"),
    )


class Resources:
    """Which resource a URL names: the most specific template that matches it (literal segments
    before variables, as the route table is sorted), with the methods bound to that template.
    So /api/agents/my is its own resource (GET only; PUT is a 405), never agent "my"."""

    def __init__(self, bindings: Iterable[Binding], websockets: Iterable[str] = ()) -> None:
        self._bindings = sorted(bindings, key=lambda binding: binding.template.specificity)
        # Paths that also take a WebSocket handshake (a GET).
        self._websockets = frozenset(websockets)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one table per app, kept for its lifetime
    def at(self, path: str) -> tuple[str, tuple[str, ...]] | None:
        """(shape, methods) of the resource at `path`, or None when no template matches."""
        shape = next((b.template.shape for b in self._bindings if b.template.match(path) is not None), None)
        if shape is None:
            return None
        methods = {
            b.http_method for b in self._bindings if b.template.shape == shape and b.template.match(path) is not None
        }
        if path in self._websockets:
            methods.add("GET")
        return shape, tuple(sorted(methods))


def method_not_allowed(scope: Scope, methods: Iterable[str]) -> Response:
    """OPTIONS: 204 listing the methods; any other method not bound here: 405 listing them
    (a GET allowed only as a WebSocket handshake: 426, upgrade)."""
    methods = tuple(methods)
    allow = ", ".join([*methods, "OPTIONS"])
    if scope["method"] == "OPTIONS":
        return Response(status_code=204, headers={"allow": allow})
    if scope["method"] in methods:
        return error_response(
            426,
            code="UPGRADE_REQUIRED",
            message="This path speaks WebSocket: send the GET as a WebSocket handshake",
            request_id=request_id_of(scope),
            headers={"upgrade": "websocket", "connection": "Upgrade", "allow": allow},
        )
    return error_response(
        405,
        code="METHOD_NOT_ALLOWED",
        message=f"Method {scope['method']} not allowed",
        request_id=request_id_of(scope),
        headers={"allow": allow},
    )


class ProtoRoute(BaseRoute):
    """A Starlette route for one binding: matches its method and compiled template, when the
    template is the resource the URL names (see Resources)."""

    def __init__(self, binding: Binding, transcoder: Transcoder, resources: Resources | None = None) -> None:
        self.binding = binding
        self.path = binding.template.source
        self.name = binding.route_name
        self._transcoder = transcoder
        self._resources = resources or Resources([binding])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        params = self.binding.template.match(scope["path"])
        if params is None:
            return Match.NONE, {}
        resource = self._resources.at(scope["path"])
        if resource is None or resource[0] != self.binding.template.shape:
            return Match.NONE, {}  # a more specific template owns this URL
        child = {"path_params": params, TEMPLATE_KEY: self.binding.template.source}
        if scope["method"] == self.binding.http_method:
            return Match.FULL, child
        return Match.PARTIAL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != self.binding.http_method:
            resource = self._resources.at(scope["path"])
            response = method_not_allowed(scope, resource[1] if resource else (self.binding.http_method,))
        else:
            response = await self._transcoder(self.binding, Request(scope, receive), scope["path_params"])
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def __repr__(self) -> str:
        return f"ProtoRoute({self.binding.http_method} {self.path} → {self.binding.full_method})"


def proto_routes(
    bindings: Iterable[Binding], transcoder: Transcoder, websockets: Iterable[str] = ()
) -> list[ProtoRoute]:
    bindings = list(bindings)
    resources = Resources(bindings, websockets)
    return [ProtoRoute(binding, transcoder, resources) for binding in bindings]


_CHOSEN = "relais.proto_route"


class RouteTable(BaseRoute):
    """One entry of Starlette's router standing for many ProtoRoutes, which picks the route its
    scan over them would pick (the first full match in order, else the first partial one) while
    trying only those that can match: the routes whose template starts with the URL's first
    segment, and those starting with a variable. A scan tried every template's regex against
    every request, about a tenth of the CPU of a `GET /health` with the contract's routes."""

    def __init__(self, routes: Iterable[ProtoRoute] = ()) -> None:
        self.routes = tuple(routes)
        anywhere: list[int] = []  # indexes of the routes a URL of any first segment may match
        by_head: dict[str, list[int]] = {}
        for index, route in enumerate(self.routes):
            template = route.binding.template
            head = template.segments[0] if template.segments else ""
            # A lone segment with a verb ("/{x}:verb", "/batch:run") is matched whole, verb included.
            if not isinstance(head, str) or head in ("*", "**") or (template.verb and len(template.segments) == 1):
                anywhere.append(index)
            else:
                by_head.setdefault(head, []).append(index)
        self._anywhere = tuple(self.routes[index] for index in anywhere)
        self._by_head = {
            head: tuple(self.routes[index] for index in sorted([*indexes, *anywhere]))
            for head, indexes in by_head.items()
        }

    def candidates(self, path: str) -> tuple[ProtoRoute, ...]:
        head = path[1:].partition("/")[0]
        return self._by_head.get(head, self._anywhere)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self.candidates(scope["path"]):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, _CHOSEN: route}
            if match is Match.PARTIAL and partial is None:
                partial = (match, {**child, _CHOSEN: route})
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: ProtoRoute = scope[_CHOSEN]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


__all__ = ["ProtoRoute", "RouteTable", "Transcoder", "proto_routes"]
