"""The route table compiled from the descriptors, and the one generic transcoding path.

Each binding becomes a `ProtoRoute`; serving a request only runs the compiled plan:
    HTTP request ─► request message (body, query, path) ─► unary RPC ─► JSON / HttpBody response
"""

from __future__ import annotations

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
from bridge.marshal import ParseError, json_to_message, message_to_json
from bridge.query import apply_params, set_path_value
from bridge.streams import first_message, sse_response
from bridge.upstream import Upstream

# HTTP headers passed to the server as gRPC metadata (credentials and client facts), and the
# metadata key each travels under: gRPC replaces `user-agent` with its own.
FORWARDED_HEADERS = {
    "authorization": "authorization",
    "cookie": "cookie",
    "x-api-key": "x-api-key",
    "x-csrf-token": "x-csrf-token",
    "x-session-id": "x-session-id",
    "user-agent": "x-forwarded-user-agent",
}
# Headers of a download the server sends as initial metadata.
DOWNLOAD_HEADERS = ("content-disposition", "content-length")
# A multipart form's limits besides the body size: file parts, and other parts.
MAX_FORM_FILES = 4
MAX_FORM_FIELDS = 64


class BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class Transcoder:
    """Runs one binding for one request."""

    def __init__(self, upstream: Upstream, *, max_body_bytes: int, cookie_secure: bool = False) -> None:
        self._upstream = upstream
        self._max_body = max_body_bytes
        self._cookie_secure = cookie_secure

    async def __call__(self, binding: Binding, request: Request, path_params: dict[str, str]) -> Response:
        request_id = request_id_of(request.scope)
        try:
            message = await self._request_message(binding, request, path_params)
        except ParseError as error:
            return validation_response(error.violations, request_id)
        except BodyError as error:
            return error_response(error.status, code=error.code, message=error.message, request_id=request_id)
        if binding.streaming:
            return await self._stream(binding, message, request, request_id)
        call = self._upstream.unary(binding)(
            message, metadata=self._metadata(request, request_id), timeout=binding.timeout
        )
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            return rpc_error_response(error, request_id, _headers(error.initial_metadata(), error.trailing_metadata()))
        headers = _headers(await call.initial_metadata(), await call.trailing_metadata())
        return _render(binding, response, headers, cookie_secure=self._cookie_secure)

    async def _stream(self, binding: Binding, message: Message, request: Request, request_id: str) -> Response:
        # No deadline: a generation lasts as long as it lasts; the client ends it by leaving.
        call = self._upstream.server_stream(binding)(message, metadata=self._metadata(request, request_id))
        if binding.stream_field and not getattr(message, binding.stream_field):
            return await self._whole(binding, call, request_id)
        try:
            first = await first_message(call)
        except grpc.aio.AioRpcError as error:
            return rpc_error_response(error, request_id, _headers(error.initial_metadata(), error.trailing_metadata()))
        if binding.method.output_type.full_name == HTTP_BODY:
            return _download(call, first, await call.initial_metadata(), binding.success_status)
        return sse_response(call, first, _headers(await call.initial_metadata()), request_id, binding.stream_dialect)

    async def _whole(self, binding: Binding, call: Any, request_id: str) -> Response:
        """The stream read to its end, answered as one JSON body: its last result event."""
        result: Message | None = None
        try:
            async for event in call:
                if event.WhichOneof(event.DESCRIPTOR.fields_by_name[binding.result_event].containing_oneof.name) == (
                    binding.result_event
                ):
                    result = getattr(event, binding.result_event)
        except grpc.aio.AioRpcError as error:
            return rpc_error_response(error, request_id, _headers(error.initial_metadata(), error.trailing_metadata()))
        finally:
            call.cancel()
        if result is None:
            return error_response(
                502, code="NO_RESULT", message="The stream ended without a result", request_id=request_id
            )
        headers = _headers(await call.initial_metadata())
        return Response(
            orjson.dumps(message_to_json(result)),
            status_code=binding.success_status,
            media_type="application/json",
            headers=headers,
        )

    async def _request_message(self, binding: Binding, request: Request, path_params: dict[str, str]) -> Message:
        message = binding.request_class()
        if binding.body:
            target = message if binding.body == "*" else getattr(message, binding.body)
            await self._read_body(request, target, binding.body)
        if binding.body != "*":
            skip = {*path_params, binding.body} if binding.body else set(path_params)
            apply_params(message, request.query_params.multi_items(), skip=skip)
        for field_path, value in path_params.items():
            set_path_value(message, field_path, value)
        return message

    async def _read_body(self, request: Request, target: Any, body_field: str) -> None:
        raw = await self._bounded_body(request)
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

    async def _bounded_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_body:
            raise BodyError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {self._max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise BodyError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _metadata(request: Request, request_id: str) -> list[tuple[str, str]]:
        metadata = [("x-request-id", request_id), ("x-http-method", request.method)]
        if request.client:
            metadata.append(("x-forwarded-for", request.client.host))
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


def _download(call: Any, first: Message | None, metadata: Any, status: int) -> Response:
    """A stream of google.api.HttpBody as one response body, typed by its first piece."""
    headers = {key: value for key, value in metadata or () if key in DOWNLOAD_HEADERS and isinstance(value, str)}

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


def _headers(*metadata: Any) -> dict[str, str]:
    """Server metadata the HTTP client should see (x-ratelimit-*, …) as headers."""
    headers: dict[str, str] = {}
    for pairs in metadata:
        for key, value in pairs or ():
            if (key.startswith("x-") or key == "retry-after") and key != "x-request-id" and isinstance(value, str):
                headers[key] = value
    return headers


def _render(binding: Binding, response: Message, headers: dict[str, str], *, cookie_secure: bool) -> Response:
    if response.DESCRIPTOR.full_name == HTTP_BODY:
        return Response(
            response.data,
            status_code=binding.success_status,
            media_type=response.content_type or "application/octet-stream",
            headers=headers,
        )
    if binding.success_status == 204:
        result = Response(status_code=204, headers=headers)
    else:
        payload = message_to_json(response)
        if binding.response_body:
            payload = payload[binding.response_body]
        if binding.envelope is not None:
            payload = {binding.envelope.data_field: payload, **dict(binding.envelope.constants)}
        result = Response(
            orjson.dumps(payload), status_code=binding.success_status, media_type="application/json", headers=headers
        )
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


class ProtoRoute(BaseRoute):
    """A Starlette route for one binding: matches its method and compiled template."""

    def __init__(self, binding: Binding, transcoder: Transcoder) -> None:
        self.binding = binding
        self.path = binding.template.source
        self.name = binding.route_name
        self._transcoder = transcoder

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        params = self.binding.template.match(scope["path"])
        if params is None:
            return Match.NONE, {}
        child = {"path_params": params, "relais.route": self.binding.template.source}
        if scope["method"] == self.binding.http_method:
            return Match.FULL, child
        return Match.PARTIAL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != self.binding.http_method:
            response = error_response(
                405,
                code="METHOD_NOT_ALLOWED",
                message=f"Method {scope['method']} not allowed",
                request_id=request_id_of(scope),
                headers={"allow": self.binding.http_method},
            )
        else:
            response = await self._transcoder(self.binding, Request(scope, receive), scope["path_params"])
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def __repr__(self) -> str:
        return f"ProtoRoute({self.binding.http_method} {self.path} → {self.binding.full_method})"


def proto_routes(bindings: Iterable[Binding], transcoder: Transcoder) -> list[ProtoRoute]:
    return [ProtoRoute(binding, transcoder) for binding in bindings]


__all__ = ["ProtoRoute", "Transcoder", "proto_routes"]
