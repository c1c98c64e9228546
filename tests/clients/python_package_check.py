"""Run by tests/clients/test_packages.py with the python of a fresh virtualenv where only the
built relais-client wheel is installed: the package against a live server, as an application uses it.

    python python_package_check.py GRPC_TARGET EMAIL PASSWORD    # prints "ok", or fails
"""

from __future__ import annotations

import importlib.util
import sys

import grpc
from relais_client import connect
from relais_typed.relais.v1 import GenerateRequest, GetHealthRequest, HealthStatus, LoginRequest


def main(target: str, email: str, password: str) -> None:
    # Nothing of the server came with the client.
    for server_module in ("server", "bridge", "sqlalchemy", "fastapi", "llama_cpp"):
        assert importlib.util.find_spec(server_module) is None, f"{server_module} is installed"

    with connect(target, timeout=10) as anonymous:
        # Unary, with a deadline and metadata of its own.
        health = anonymous.system.get_health(GetHealthRequest(), timeout=5, metadata=[("x-request-id", "py-check")])
        assert health.db_ok and health.status != HealthStatus.UNSPECIFIED, health
        tokens = anonymous.auth.login(LoginRequest(email=email, password=password))
        # An error: the status code and message of the server.
        try:
            anonymous.auth.login(LoginRequest(email=email, password="not-the-password"))
        except grpc.RpcError as error:
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED, error
        else:
            raise AssertionError("a wrong password was accepted")

    with connect(target, token=tokens.access_token) as relais:
        assert relais.users.get_profile().email == email
        # Server streaming: tokens, then the final message.
        events = list(relais.inference.generate_stream(GenerateRequest(prompt="The sky is", max_tokens=4), timeout=240))
        kinds = [next(name for name in ("status", "token", "final", "error") if getattr(e, name)) for e in events]
        assert "token" in kinds and kinds[-1] == "final", kinds
        # A deadline too short for the call fails it with DEADLINE_EXCEEDED.
        try:
            list(relais.inference.generate_stream(GenerateRequest(prompt="Count to a hundred."), timeout=0.001))
        except grpc.RpcError as error:
            assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED, error
        else:
            raise AssertionError("the deadline was ignored")
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:4])
