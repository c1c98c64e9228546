"""Idempotency keys for the unary RPCs whose (relais.options.v1.idempotency).key is set.

A call carrying `idempotency-key` metadata (the bridge forwards the HTTP `Idempotency-Key`
header as it) is served through server/idempotency/: run once, its answer stored; retries get
the stored answer with `idempotent-replayed: true` in the trailing metadata. Calls without the
key, and every other RPC, pass straight through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from relais.options.v1 import options_pb2

from server.errors import DomainError, InvalidArgument
from server.idempotency.service import Claim, IdempotencyKeys, Stored
from server.interceptors.call import current_call
from server.interceptors.request_id import metadata_value
from server.storage.engine import on_commit

KEY = "idempotency-key"
REPLAYED = ("idempotent-replayed", "true")
MAX_KEY = 255


def fingerprint(request: Message) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def honours_key(method: str) -> type[Message] | None:
    """The response class of `method` ("/pkg.Service/Method") if it honours idempotency keys."""
    service, _, name = method.strip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return None
    options = descriptor.GetOptions()
    if descriptor.server_streaming or not options.Extensions[options_pb2.idempotency].key:
        return None
    response: type[Message] = message_factory.GetMessageClass(descriptor.output_type)
    return response


class ReplayedError(DomainError):
    """A stored failure, answered again with its own code and reason."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(stored.message)
        self.code, self.reason = stored.status_code, stored.reason or "ERROR"


class IdempotencyInterceptor(grpc.aio.ServerInterceptor):
    """Placed after the chain of call scopes (server/interceptors/chain.py), so it runs inside
    them: the caller is authenticated, and its errors become statuses like any other."""

    def __init__(self, keys: IdempotencyKeys, translate: Callable[[BaseException], DomainError | None]) -> None:
        self._keys = keys
        self._translate = translate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        response_class = honours_key(details.method)
        if response_class is None:
            return handler
        inner = handler.unary_unary
        method = details.method

        async def unary(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            key = metadata_value(context, KEY)
            if key is None:
                return await inner(request, context)
            return await self._serve(method, key, request, context, inner, response_class)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)

    async def _serve(
        self,
        method: str,
        key: str,
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
        inner: Callable[[Message, Any], Awaitable[Any]],
        response_class: type[Message],
    ) -> Any:
        if not 0 < len(key) <= MAX_KEY or not key.isascii() or not key.isprintable():
            raise InvalidArgument(f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters")
        state = current_call()
        owner = state.principal.subject if state.principal is not None else f"ip:{state.client_ip}"
        claimed = await self._keys.begin(owner=owner, method=method, key=key, fingerprint=fingerprint(request))
        if isinstance(claimed, Stored):
            state.response_metadata.append(REPLAYED)
            if claimed.status_code != "OK":
                raise ReplayedError(claimed)
            return response_class.FromString(claimed.response or b"")
        return await self._run(claimed, request, context, inner)

    async def _run(
        self,
        claim: Claim,
        request: Message,
        context: grpc.aio.ServicerContext[Any, Any],
        inner: Callable[[Message, Any], Awaitable[Any]],
    ) -> Any:
        async with self._keys.held(claim):
            try:
                with on_commit(self._keys.on_commit(claim)):
                    response = await inner(request, context)
            except DomainError as error:
                await self._keys.failed(claim, error)
                raise
            except BaseException as error:
                await self._keys.failed(claim, self._translate(error))
                raise
        await self._keys.succeeded(claim, response.SerializeToString())
        return response
