"""Uploads into a client-streaming RPC through the live bridge: the form read as it arrives,
then sent in pieces of 1 MiB, past the bridge's usual body limit (64 KiB in the test stack) up
to the binding's own (4 MiB)."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from bridge.bindings import compile_bindings
from bridge.httprule import TemplateError
from tests.bridge.test_bindings import service_from

MIB = 1024 * 1024


def test_a_file_beyond_the_usual_limit_arrives_in_pieces_with_the_other_fields(http: httpx.Client) -> None:
    data = os.urandom(3 * MIB + 5)
    response = http.post(
        "/v1/uploads",
        params={"copies": "2", "label": "from the query"},
        files={"file": ("notes.bin", data, "application/octet-stream")},
        data={"label": "from the form"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pieces"] == [MIB, MIB, MIB, 5] and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["filename"], body["content_type"]) == ("notes.bin", "application/octet-stream")
    # Form parts win over the query string; the query fills what the form leaves out.
    assert (body["label"], body["copies"]) == ("from the form", 2)
    assert body["later_fields"] == []  # later messages carry the file's data alone


def test_an_upload_past_the_binding_limit_is_refused_with_413(http: httpx.Client) -> None:
    response = http.post("/v1/uploads", files={"file": ("big.bin", bytes(4 * MIB + 1), "application/octet-stream")})

    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_json_uploads_are_one_message_under_the_usual_limit(http: httpx.Client) -> None:
    small = http.post("/v1/uploads", json={"file": {"filename": "a.txt", "data": base64.b64encode(b"hello").decode()}})
    large = http.post("/v1/uploads", json={"file": {"data": base64.b64encode(bytes(100_000)).decode()}})

    assert small.status_code == 200 and small.json()["pieces"] == [5]
    assert large.status_code == 413


@pytest.mark.parametrize(
    "files, message",
    [
        ({"other": ("x.bin", b"x", "application/octet-stream")}, "Unexpected file part 'other'"),
        (
            [("file", ("a.bin", b"a", "text/plain")), ("file", ("b.bin", b"b", "text/plain"))],
            "Unexpected file part 'file'",
        ),
    ],
)
def test_unexpected_file_parts_are_refused(http: httpx.Client, files: object, message: str) -> None:
    response = http.post("/v1/uploads", files=files)  # type: ignore[arg-type]

    assert response.status_code == 400 and message in response.json()["detail"]


def test_the_upload_is_documented_as_a_multipart_form(http: httpx.Client) -> None:
    operation = http.get("/openapi.json").json()["paths"]["/v1/uploads"]["post"]

    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"] == {"type": "string", "format": "binary"} and form["required"] == ["file"]


@pytest.mark.parametrize(
    "request_fields",
    ["string name = 1;", "relais.options.v1.UploadedFile file = 1;"],
)
def test_only_uploads_may_be_client_streaming_over_http(request_fields: str) -> None:
    bidi = request_fields.startswith("relais")
    text = 'post: "/x" body: "*"'
    service = service_from(text, body_fields=request_fields, streaming=bidi, client_streaming=True)
    with pytest.raises(TemplateError, match="only uploads"):
        compile_bindings([service])
