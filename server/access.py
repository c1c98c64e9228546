"""AccessService: answer "may this caller call that RPC?" with the server's own policy."""

from __future__ import annotations

from typing import Any

from relais.v1 import access_pb2, access_pb2_grpc

from server.auth import AccessPolicy, Authenticator
from server.errors import InvalidArgument
from server.interceptors.call import current_call


class AccessServicer(access_pb2_grpc.AccessServiceServicer):
    def __init__(self, policy: AccessPolicy, authenticator: Authenticator) -> None:
        self._policy = policy
        self._authenticator = authenticator

    async def CheckAccess(self, request: access_pb2.CheckAccessRequest, context: Any) -> access_pb2.CheckAccessResponse:
        if not request.method.startswith("/") or request.method.count("/") != 2:
            raise InvalidArgument("method must be a full gRPC method name, e.g. /relais.v1.Service/Method")
        rule = self._policy.rule_for(request.method)
        principal = await self._policy.admit(rule, current_call().credentials, self._authenticator)
        if principal is None:
            return access_pb2.CheckAccessResponse()
        return access_pb2.CheckAccessResponse(subject=principal.subject, anonymous=principal.anonymous)
