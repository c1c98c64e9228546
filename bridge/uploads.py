"""Uploads into client-streaming RPCs: request bodies too large to hold, sent in pieces.

The multipart form is read as it arrives: Starlette spools each file part to a temporary file
beyond 1 MiB, so memory stays bounded whatever the size, and the body is cut off past the
binding's limit (413). Then the request travels as relais.options.v1.UploadedFile describes:

    message 1   every other field (form parts, query and path parameters), each file's name,
                type and first piece of `data`
    message n   the next piece of one file's `data`, alone, files in form order

A JSON body (the file in base64) is one message, under the bridge's usual body limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf.message import Message
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.types import Message as AsgiMessage

from bridge.bindings import Binding, is_uploaded_file
from bridge.query import apply_params, set_path_value

PIECE = 1024 * 1024
# A multipart form's limits besides the body size: file parts, and other parts.
MAX_FORM_FILES = 4
MAX_FORM_FIELDS = 64


class UploadRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def too_large(limit: int) -> UploadRefused:
    return UploadRefused(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data"


class Upload:
    """A form read to its end; its messages are produced as the server asks for them."""

    def __init__(self, binding: Binding, first: Message, files: list[tuple[str, UploadFile]], form: FormData) -> None:
        self._binding = binding
        self.first = first
        self._files = files
        self._form = form

    async def messages(self) -> AsyncIterator[Message]:
        yield self.first
        for name, part in self._files:
            while piece := await part.read(PIECE):
                message = self._binding.request_class()
                getattr(message, name).data = piece
                yield message

    async def close(self) -> None:
        await self._form.close()


async def read_upload(binding: Binding, request: Request, path_params: dict[str, str], *, limit: int) -> Upload:
    """The multipart form of `request` as an Upload; UploadRefused for a bad or oversized form,
    ParseError for fields that do not fit the request message."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    received = 0

    async def receive() -> AsgiMessage:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large(limit)
        return message

    try:
        form = await Request(request.scope, receive).form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    except UploadRefused:
        raise
    except Exception as error:  # starlette raises MultiPartException or HTTPException for bad forms
        raise UploadRefused(
            400, "BAD_REQUEST", f"Malformed multipart body: {getattr(error, 'detail', error)}"
        ) from None
    try:
        return await _first_message(binding, form, request, path_params)
    except BaseException:
        await form.close()
        raise


async def _first_message(binding: Binding, form: FormData, request: Request, path_params: dict[str, str]) -> Upload:
    first = binding.request_class()
    pairs: list[tuple[str, str]] = []
    files: list[tuple[str, UploadFile]] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            pairs.append((name, value))
            continue
        field = first.DESCRIPTOR.fields_by_name.get(name)
        if field is None or not is_uploaded_file(field) or any(name == seen for seen, _ in files):
            raise UploadRefused(400, "BAD_REQUEST", f"Unexpected file part {name!r}")
        uploaded: Any = getattr(first, name)
        uploaded.filename = value.filename or ""
        uploaded.content_type = value.content_type or ""
        uploaded.data = await value.read(PIECE)
        files.append((name, value))
    apply_params(first, pairs)
    apply_params(first, request.query_params.multi_items(), skip={*path_params, *form.keys()})
    for field_path, value in path_params.items():
        set_path_value(first, field_path, value)
    return Upload(binding, first, files, form)
