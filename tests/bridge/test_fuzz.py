"""Property-based fuzzing of every documented route with schemathesis, against /openapi.json.

Checks: no 5xx, and statuses / content types / headers / bodies conform to the document.
Left out on purpose: negative_data_rejection (the bridge accepts proto3 JSON's lenient forms,
such as numeric strings for integers, which the schema does not spell out),
positive_data_acceptance (domain rules such as password strength or built-in roles reject
schema-valid input with 400/422, as they should) and the stateful phase.

schemathesis' pytest plugin does not run on pytest 9, so its CLI runs against the live stack.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import stack_settings
from tests.support import services
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "positive_data_acceptance",
    ]
)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("fuzz")
    # Generation is served by the Triton stand-in: fuzzed requests ask for up to max_tokens tokens,
    # which the real CPU model would take minutes to write.
    triton = LiveTriton([StandInModel(name="echo")]).start()
    model = {"key": "echo", "backend": "triton", "url": triton.url, "model_name": "echo", "context_window": 8192}
    settings = stack_settings(data, f"sqlite:///{Path(data) / 'db.sqlite'}", max_body_bytes=64 * 1024, models=[model])
    live = services.start_stack_with_test_service(settings, static_tokens=True)
    yield live
    live.stop()
    triton.close()


@pytest.mark.parametrize("credentials", ["Bearer admin-token", ""])
def test_no_route_misbehaves_under_fuzzing(fuzz_stack: LiveStack, credentials: str) -> None:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{fuzz_stack.base_url}/openapi.json",
        "--checks",
        CHECKS,
        # The coverage phase applies it unless told otherwise.
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "20",
        # /v1/fail answers whatever error a request asks for (and crashes on `crash`), by design.
        "--exclude-path",
        "/v1/fail",
        "--seed",
        "20261122",
        "--generation-deterministic",
    ]
    if credentials:
        command += ["-H", f"Authorization: {credentials}"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
