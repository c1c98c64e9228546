"""LangChain's ChatOpenAI (langchain-openai) pointed at Relais, on the real packaged Gemma: a call,
a stream, a tool call, a structured answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.support.live import LiveStack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{Path(tmp_path_factory.mktemp('langchain')) / 'relais.db'}"


@pytest.fixture
def llm(openai_stack: LiveStack, key: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=f"{openai_stack.base_url}/v1",
        api_key=key,
        model="gemma3-270m",
        temperature=0,
        max_completion_tokens=24,
        max_retries=0,
        timeout=600,
    )


QUESTION = [SystemMessage("You answer in one short sentence."), HumanMessage("What is the capital of France?")]


def test_chat_openai_answers_and_reports_its_usage(llm: ChatOpenAI) -> None:
    answer = llm.invoke(QUESTION)

    assert isinstance(answer.content, str) and answer.content.strip()
    assert answer.response_metadata["model_name"] == "gemma3-270m"
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    assert answer.usage_metadata is not None and answer.usage_metadata["input_tokens"] > 10


def test_chat_openai_streams_token_by_token(llm: ChatOpenAI) -> None:
    chunks = list(llm.stream(QUESTION, stream_usage=True))

    text = "".join(str(chunk.content) for chunk in chunks)
    assert len([chunk for chunk in chunks if chunk.content]) > 2 and text.strip()
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk) and whole.usage_metadata is not None
    assert whole.usage_metadata["output_tokens"] > 2


class Weather(BaseModel):
    """The current weather in a city."""

    city: str = Field(description="The city", max_length=40)


def test_bound_tools_come_back_as_tool_calls_and_their_results_are_answered(llm: ChatOpenAI) -> None:
    forced = llm.bind_tools([Weather], tool_choice="Weather")
    question = HumanMessage("What is the weather in Berlin?")

    called = forced.invoke([question])

    [call] = called.tool_calls
    assert call["name"] == "Weather" and isinstance(call["args"]["city"], str)
    answered = llm.bind_tools([Weather], tool_choice="none").invoke(
        [question, called, ToolMessage("Cloudy, 14 C", tool_call_id=call["id"])]
    )
    assert isinstance(answered.content, str) and answered.content.strip() and not answered.tool_calls


class Capital(BaseModel):
    city: str = Field(max_length=30)
    country: str = Field(max_length=30)


def test_structured_output_is_read_from_a_json_schema_answer(llm: ChatOpenAI) -> None:
    structured = llm.with_structured_output(Capital, method="json_schema")

    capital = structured.invoke([HumanMessage("Which city is the capital of Spain?")])

    assert isinstance(capital, Capital) and capital.city and capital.country
