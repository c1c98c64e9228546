"""Test servicer for relaistest.v1.TranscodingService, and a token authenticator
standing in for the identity domain (which plugs into the same Authenticator seam)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from google.api import httpbody_pb2

from server.auth import Credentials, Principal
from server.config import Settings
from server.errors import (
    AlreadyExists,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from server.interceptors.call import current_call
from server.registration import ServiceRegistration, register
from tests.support import testproto
from tests.support.live import LiveStack

pb, pb_grpc = testproto.load()

ERRORS: dict[str, type[DomainError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "FAILED_PRECONDITION": FailedPrecondition,
    "RESOURCE_EXHAUSTED": ResourceExhausted,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNAVAILABLE": Unavailable,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
}

TOKENS = {
    "admin-token": Principal(subject="admin", roles=frozenset({"admin"}), permissions=frozenset({"*"})),
    "user-token": Principal(subject="user", roles=frozenset({"user"})),
}


class TokenAuthenticator:
    """Static test tokens; anything else falls through to the real identity domain."""

    async def authenticate(self, credentials: Credentials) -> Principal | None:
        token = credentials.bearer or credentials.cookie_token or credentials.api_key
        return TOKENS.get(token or "")


class TranscodingServicer(pb_grpc.TranscodingServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.count_finished = 0

    async def GetItem(self, request: Any, context: Any) -> Any:
        return pb.Item(
            id=request.item_id,
            shelf=request.shelf,
            page_size=request.page_size,
            tags=request.tags,
            kind=request.kind,
            filter=request.filter if request.HasField("filter") else None,
            created_at=request.since if request.HasField("since") else None,
            name="echo",
        )

    async def GetSpecialItem(self, request: Any, context: Any) -> Any:
        return pb.Item(id=-1, name="special")

    async def CreateItem(self, request: Any, context: Any) -> Any:
        item = pb.Item()
        item.CopyFrom(request.item)
        item.shelf = request.shelf
        item.note = "validated" if request.validate_only else "created"
        return item

    async def UpdateItem(self, request: Any, context: Any) -> Any:
        item = pb.Item()
        item.CopyFrom(request.item)
        item.name = f"{item.name} ({request.reason})"
        return item

    async def GetItemTags(self, request: Any, context: Any) -> Any:
        return pb.Item(id=request.item_id, tags=["a", "b"])

    async def GetFile(self, request: Any, context: Any) -> Any:
        if request.path.endswith(".missing"):
            raise NotFound(f"No file {request.path}")
        return httpbody_pb2.HttpBody(content_type="text/plain", data=f"file:{request.path}".encode())

    async def Fail(self, request: Any, context: Any) -> Any:
        if request.crash:
            raise RuntimeError("secret internal detail")
        if request.invalid_fields:
            raise ValidationFailed([FieldViolation(field=f, message="is invalid") for f in request.invalid_fields])
        raise ERRORS.get(request.code, InvalidArgument)(request.message or request.code or "failed")

    async def OpenSession(self, request: Any, context: Any) -> Any:
        return pb.OpenSessionResponse(token=f"tok-{request.user}", expires_in=3600, user=request.user)

    async def WhoAmI(self, request: Any, context: Any) -> Any:
        principal = current_call().principal
        return pb.WhoAmIResponse(subject=principal.subject if principal else "")

    async def Ping(self, request: Any, context: Any) -> Any:
        principal = current_call().principal
        return pb.WhoAmIResponse(subject=principal.subject if principal else "")

    async def DeleteItem(self, request: Any, context: Any) -> Any:
        return pb.DeleteItemResponse()

    async def Upload(self, requests: Any, context: Any) -> Any:
        digest, pieces, first, later = hashlib.sha256(), [], None, set()
        async for request in requests:
            first = first or request
            if request is not first:
                later.update(field.name for field, _ in request.ListFields() if field.name != "file")
                later.update(f"file.{field.name}" for field, _ in request.file.ListFields() if field.name != "data")
            digest.update(request.file.data)
            pieces.append(len(request.file.data))
        assert first is not None
        return pb.UploadResponse(
            pieces=pieces,
            sha256=digest.hexdigest(),
            filename=first.file.filename,
            content_type=first.file.content_type,
            label=first.label,
            copies=first.copies,
            later_fields=sorted(later),
        )

    async def Count(self, request: Any, context: Any) -> Any:
        for value in range(request.to):
            await asyncio.sleep(request.delay_ms / 1000)
            yield pb.CountResponse(value=value)
        self.count_finished += 1


def registration(servicer: TranscodingServicer) -> ServiceRegistration:
    return register(pb, pb_grpc, "TranscodingService", servicer)


def start_stack_with_test_service(
    settings: Settings, *, servicer: TranscodingServicer | None = None, static_tokens: bool = False
) -> LiveStack:
    """A started stack serving the test service (gRPC and its HTTP bindings) beside the contract,
    optionally accepting the static TOKENS before the real identity domain."""
    return LiveStack(
        settings,
        authenticator=TokenAuthenticator() if static_tokens else None,
        extra_services=[registration(servicer or TranscodingServicer())],
        extra_descriptors=[pb.DESCRIPTOR.services_by_name["TranscodingService"]],
    ).start()
