"""The small pieces of the OpenAI API that need no server: names, numbers, request tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.errors import openai_error_body
from bridge.violations import FieldViolation
from server.identity.models import User
from server.inference.backend import GenerationRequest, JsonFormat, Role, ToolSpec, Turn
from server.inference.triton import build_request
from server.openai_api.repository import UsageRepository, Use
from server.openai_api.requests import whole_numbers
from server.openai_api.usage import UsageCounter
from server.ratelimit.limiter import duration
from server.storage import create_database
from tests.support.triton_standin import decode_request_inputs


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (1, "1s"), (42.2, "43s"), (360, "6m0s"), (3723, "1h2m3s"), (-1, "0ms")]
)
def test_a_rate_limit_reset_is_written_as_openai_writes_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_integral_numbers_of_a_struct_become_integers_again() -> None:
    schema = {"type": "string", "maxLength": 40.0, "enum": [1.0, 2.5], "nested": {"minimum": -3.0}}

    assert whole_numbers(schema) == {"type": "string", "maxLength": 40, "enum": [1, 2.5], "nested": {"minimum": -3}}


@pytest.mark.parametrize(
    ("status", "code", "kind", "openai_code"),
    [
        (400, "VALIDATION_ERROR", "invalid_request_error", "validation_error"),
        (401, "AUTHENTICATION_ERROR", "authentication_error", "invalid_api_key"),
        (403, "AUTHORIZATION_ERROR", "permission_error", "authorization_error"),
        (404, "MODEL_NOT_FOUND", "invalid_request_error", "model_not_found"),
        (429, "RATE_LIMIT", "requests", "rate_limit_exceeded"),
        (503, "BACKEND_UNAVAILABLE", "server_error", "backend_unavailable"),
    ],
)
def test_errors_take_openais_types_and_codes(status: int, code: str, kind: str, openai_code: str) -> None:
    body = openai_error_body(status=status, code=code, message="why", details=[FieldViolation(field="n", message="x")])

    assert body == {"error": {"message": "why", "type": kind, "param": "n", "code": openai_code}}


def test_a_json_answer_on_triton_is_vllms_guided_decoding() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = GenerationRequest(
        request_id="r", turns=(Turn(Role.USER, "Hi"),), json_format=JsonFormat(schema=schema), max_tokens=8
    )
    tool = ToolSpec(name="t", description="", parameters={"type": "object"})

    answer = json.loads(
        decode_request_inputs(build_request(request, model_name="m", convention="vllm"))["sampling_parameters"][0]
    )
    any_object = GenerationRequest(request_id="r", prompt="x", json_format=JsonFormat())
    loose = decode_request_inputs(build_request(any_object, model_name="m", convention="vllm"))
    calling = GenerationRequest(
        request_id="r",
        turns=(Turn(Role.USER, "Hi"),),
        json_format=JsonFormat(schema=schema),
        tools=(tool,),
        tool_choice="t",
    )
    step = decode_request_inputs(build_request(calling, model_name="m", convention="vllm"))

    assert json.loads(answer["guided_decoding"]) == {"json": schema}
    assert json.loads(json.loads(loose["sampling_parameters"][0])["guided_decoding"]) == {"json": {"type": "object"}}
    # A tool-call step keeps the tool-call schema; the answer's format applies once it answers.
    guided = json.loads(json.loads(step["sampling_parameters"][0])["guided_decoding"])["json"]
    assert guided["properties"]["tool"] == {"const": "t"}


async def test_usage_counts_are_summed_in_memory_and_kept_until_a_write_succeeds(tmp_path: Path) -> None:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    repository = UsageRepository(database)
    counter = UsageCounter(repository, interval=3600)
    try:
        for prompt in (10, 20):
            counter.add(
                Use(user_id=1, endpoint="chat.completions", model="fast", prompt_tokens=prompt, completion_tokens=5)
            )
        counter.add(Use(user_id=1, endpoint="embeddings", model="all-MiniLM-L6-v2", prompt_tokens=7))

        await counter.flush()  # no schema yet: the write fails and the counts stay held
        await database.migrate()
        async with database.sessions() as session, session.begin():
            session.add(User(id=1, email="u@example.com", username="u", password_hash="x"))
        await counter.close()

        rows = {(row.endpoint, row.model): row for row in await repository.list(1, days=1)}
    finally:
        await database.dispose()
    chat = rows[("chat.completions", "fast")]
    assert (chat.requests, chat.prompt_tokens, chat.completion_tokens) == (2, 30, 10)
    assert rows[("embeddings", "all-MiniLM-L6-v2")].prompt_tokens == 7
