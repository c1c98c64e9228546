"""The official `openai` Python SDK against a live Relais on the real packaged Gemma (llama.cpp on
the CPU): sync and async clients, streaming, tools, JSON Schema answers, embeddings, errors."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.identity.helpers import Account
from tests.support.live import LiveStack

pytestmark = pytest.mark.slow

MODEL = "gemma3-270m"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "country": {"type": "string", "maxLength": 30},
        "population": {"type": "integer", "minimum": 0},
    },
    "required": ["name", "country", "population"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: the real model makes these tests slow enough once."""
    return f"sqlite:///{Path(tmp_path_factory.mktemp('sdk')) / 'relais.db'}"


@pytest.fixture
def client(openai_stack: LiveStack, key: str) -> Iterator[openai.OpenAI]:
    # Closed after the test: its pooled connections would otherwise wait for the garbage collector.
    with openai.OpenAI(base_url=f"{openai_stack.base_url}/v1", api_key=key, timeout=600, max_retries=0) as client:
        yield client


@pytest.fixture
def async_client(openai_stack: LiveStack, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{openai_stack.base_url}/v1", api_key=key, timeout=600, max_retries=0)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You answer in one short sentence."}, {"role": "user", "content": text}]


def test_the_sync_client_lists_models_and_completes_a_chat(client: openai.OpenAI) -> None:
    models = {model.id for model in client.models.list()}
    completion = client.chat.completions.create(
        model=MODEL, messages=ask("What is the capital of France?"), max_tokens=16, temperature=0, seed=7
    )

    assert {MODEL, "auto", "all-MiniLM-L6-v2"} <= models
    choice = completion.choices[0]
    assert completion.object == "chat.completion" and completion.model == MODEL
    assert choice.message.role == "assistant" and choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.prompt_tokens > 10
    assert 0 < completion.usage.completion_tokens <= 16


def test_the_async_client_completes_a_chat_and_a_plain_prompt(async_client: openai.AsyncOpenAI) -> None:
    async def both() -> tuple[openai.types.chat.ChatCompletion, openai.types.Completion]:
        async with async_client:
            chat = await async_client.chat.completions.create(
                model=MODEL, messages=ask("Name a colour."), max_completion_tokens=8, temperature=0
            )
            text = await async_client.completions.create(
                model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0
            )
            return chat, text

    chat, text = asyncio.run(both())

    assert chat.choices[0].message.content
    assert text.object == "text_completion" and text.choices[0].text.strip()
    assert text.usage is not None and text.usage.completion_tokens <= 8


def test_a_streamed_answer_arrives_in_chunks_then_its_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ask("Tell me about the sea."),
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    texts = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([text for text in texts if text]) > 3 and "".join(texts).strip()
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert not chunks[-1].choices and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 3


def test_a_client_tool_is_called_then_its_result_answered(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "What is the weather in Paris today?"}]
    called = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )

    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"weather": "sunny", "celsius": 21}'},
    ]
    answered = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=24,
        temperature=0,
    )
    assert answered.choices[0].message.content and not answered.choices[0].message.tool_calls


def test_a_json_schema_answer_matches_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ask("Describe Paris as JSON."),
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}},
        max_tokens=80,
        temperature=0,
    )
    loose = client.chat.completions.create(
        model=MODEL,
        messages=ask("Give me a JSON object about Rome."),
        response_format={"type": "json_object"},
        max_tokens=120,
        temperature=0,
    )

    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), CITY)
    # Any object: the 270M model sometimes repeats a key until max_tokens cuts it, as OpenAI's
    # json_object answers may be cut (finish_reason "length"); what it writes is always an object.
    text, finish = loose.choices[0].message.content or "", loose.choices[0].finish_reason
    assert text.startswith('{"') and (finish == "length" or isinstance(json.loads(text), dict)), (finish, text)


class City(BaseModel):
    name: str
    country: str


def test_the_sdk_parse_helper_reads_a_pydantic_answer(client: openai.OpenAI) -> None:
    parsed = client.chat.completions.parse(
        model=MODEL, messages=ask("Which city is the capital of Italy?"), response_format=City, max_tokens=60
    )

    city = parsed.choices[0].message.parsed
    assert isinstance(city, City) and city.name


def test_embeddings_as_floats_and_as_the_sdks_default_base64(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly revenue grew by 4%."]

    by_default = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # the SDK asks for base64
    as_floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")

    vectors = [item.embedding for item in by_default.data]
    assert [item.index for item in by_default.data] == [0, 1, 2] and by_default.model == "all-MiniLM-L6-v2"
    assert all(len(vector) == 384 and math.isclose(math.hypot(*vector), 1, abs_tol=1e-4) for vector in vectors)
    for mine, theirs in zip(vectors, (item.embedding for item in as_floats.data), strict=True):
        assert max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) < 1e-6

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert by_default.usage.prompt_tokens == by_default.usage.total_tokens > 15
    one = client.embeddings.create(model="all-MiniLM-L6-v2", input="just one")
    assert len(one.data) == 1


def test_the_sdk_raises_openais_errors(client: openai.OpenAI, openai_stack: LiveStack) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=ask("Hi"))
    with pytest.raises(openai.NotFoundError) as no_embedder:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError) as two:
        client.chat.completions.create(model=MODEL, messages=ask("Hi"), n=2)
    with pytest.raises(openai.BadRequestError) as too_long:
        client.embeddings.create(model="all-MiniLM-L6-v2", input="word " * 400)
    with (
        openai.OpenAI(base_url=f"{openai_stack.base_url}/v1", api_key="rls_unknown", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.models.list()

    assert missing.value.code == "model_not_found" and no_embedder.value.code == "model_not_found"
    assert two.value.param == "n"
    assert too_long.value.param == "input[0]" and "256" in too_long.value.message


def test_the_users_usage_counts_the_models_tokens(http: httpx.Client, client: openai.OpenAI, key: str) -> None:
    client.chat.completions.create(model=MODEL, messages=ask("Hello"), max_tokens=4)
    client.embeddings.create(model="all-MiniLM-L6-v2", input=["one", "two"])

    usage = http.get("/v1/usage", headers={"Authorization": f"Bearer {key}"}).json()["data"]

    rows = {(row["endpoint"], row["model"]): row for row in usage}
    chat = rows[("chat.completions", MODEL)]
    assert chat["requests"] == 1 and chat["prompt_tokens"] > 10 and 0 < chat["completion_tokens"] <= 4
    embeddings = rows[("embeddings", "all-MiniLM-L6-v2")]
    assert embeddings["requests"] == 1 and embeddings["prompt_tokens"] == 6 and embeddings["completion_tokens"] == 0


def test_an_agent_model_answers_with_the_agents_documents(
    http: httpx.Client, client: openai.OpenAI, user: Account
) -> None:
    agent = http.post(
        "/api/agents", headers=user.bearer, json={"name": "Support", "system_prompt": "You help.", "model": "parrot"}
    ).json()
    manual = "To reset the Zephyr router, hold the rear button for ten seconds."
    uploaded = http.post(
        "/api/documents/upload",
        files={"file": ("zephyr.txt", manual.encode())},
        data={"entity_type": "agent", "entity_id": str(agent["id"])},
        headers=user.bearer,
    )
    assert uploaded.status_code in (200, 201), uploaded.text

    answer = client.chat.completions.create(
        model=f"agent:{agent['id']}", messages=[{"role": "user", "content": "How do I reset the Zephyr router?"}]
    )

    prompt = answer.choices[0].message.content or ""  # the parrot answers with what it read
    assert prompt.startswith("You help.") and manual in prompt and "[1] zephyr.txt" in prompt
