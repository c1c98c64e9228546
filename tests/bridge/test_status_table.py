"""The status tables are complete: every gRPC code and every DomainError has an HTTP mapping."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2

from bridge.errors import http_status, reason_for
from server import errors


def all_domain_errors() -> list[type[errors.DomainError]]:
    found, pending = [], [errors.DomainError]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.__subclasses__())
    return [error for error in found if error is not errors.DomainError]


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda code: code.name)
def test_every_grpc_code_has_an_http_status(code: grpc.StatusCode) -> None:
    status = http_status(code)
    assert 200 <= status < 600
    assert (status == 200) == (code is grpc.StatusCode.OK)
    assert reason_for(code)


def test_grpc_gateway_choices_are_kept() -> None:
    assert http_status(grpc.StatusCode.CANCELLED) == 499
    assert http_status(grpc.StatusCode.FAILED_PRECONDITION) == 400
    assert http_status(grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR") == 422
    assert http_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE") == 413


@pytest.mark.parametrize("error", all_domain_errors(), ids=lambda error: error.__name__)
def test_every_domain_error_maps_to_a_status(error: type[errors.DomainError]) -> None:
    code = grpc.StatusCode[error.code]
    assert code_pb2.Code.Value(error.code) == code.value[0]
    assert http_status(code, error.reason) >= 400
    assert error.reason and error.reason.isupper()
