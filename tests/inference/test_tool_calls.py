"""Tool calls from models that write text: the schema a call must match, its parsing, the
prompt (transcript or the model's own chat template), Triton's structured output, and the router."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from server.errors import InvalidArgument
from server.inference.backend import GenerationRequest, ProposedCall, Role, ToolSpec, Turn
from server.inference.catalogue import Catalogue, ServedModel, build_backend
from server.inference.config import ModelConfig
from server.inference.prompt import TURN_STOPS, render, stops
from server.inference.templates import ChatTemplate
from server.inference.toolcalls import call_schema, parse_call
from server.inference.triton import build_request
from tests.support.triton_standin import decode_request_inputs

CALCULATOR = ToolSpec(
    name="calculator",
    description="Arithmetic.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
CLOCK = ToolSpec(name="current_time", description="Time.", parameters={"type": "object", "properties": {}})
# Gemma's chat template, as Gemma 3's tokenizer_config.json carries it (shortened: no images).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + "
    "'\\n\\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + "
    "'<end_of_turn>\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


def request(choice: str, *turns: Turn, tools: tuple[ToolSpec, ...] = (CALCULATOR, CLOCK)) -> GenerationRequest:
    return GenerationRequest(
        request_id="r", turns=turns or (Turn(Role.USER, "12345 * 6789"),), tools=tools, tool_choice=choice
    )


def test_a_named_choice_allows_that_tool_only() -> None:
    schema = call_schema((CALCULATOR, CLOCK), "calculator")
    jsonschema.validate({"tool": "calculator", "arguments": {"expression": "1+1"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool": "current_time", "arguments": {}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool": "calculator", "arguments": {}}, schema)


def test_auto_also_allows_no_tool_and_required_does_not() -> None:
    jsonschema.validate({"tool": "none"}, call_schema((CALCULATOR, CLOCK), "auto"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool": "none"}, call_schema((CALCULATOR, CLOCK), "required"))
    jsonschema.validate({"tool": "current_time", "arguments": {}}, call_schema((CALCULATOR, CLOCK), "required"))


def test_calls_are_parsed_from_what_the_model_wrote() -> None:
    call = parse_call(' {"tool": "calculator", "arguments": {"expression": "2*3"}} trailing')
    assert call is not None and (call.name, call.arguments) == ("calculator", {"expression": "2*3"})
    assert call.call_id.startswith("call_")
    assert parse_call('{"tool": "none"}') is None
    for broken in ("no json here", '{"tool": "calculator", "arguments": {"expression": "2*', '{"arguments": {}}'):
        with pytest.raises(ValueError):
            parse_call(broken)


def test_the_transcript_shows_tools_calls_and_results() -> None:
    call = ProposedCall(call_id="c1", name="calculator", arguments={"expression": "1+1"})
    turns = (
        Turn(Role.SYSTEM, "Be brief."),
        Turn(Role.USER, "1+1?"),
        Turn(Role.ASSISTANT, "", tool_calls=(call,)),
        Turn(Role.TOOL, "1+1 = 2", tool_call_id="c1", tool_name="calculator"),
    )
    prompt = render(request("auto", *turns))
    assert prompt.startswith("Be brief.\n\nYou can use these tools.\n- calculator: Arithmetic.")
    assert '{"tool": "none"}' in prompt
    assert prompt.endswith(
        'User: 1+1?\nAssistant: {"tool": "calculator", "arguments": {"expression": "1+1"}}\n'
        "Tool (calculator): 1+1 = 2\nAssistant:"
    )
    # Answering in words: no tool instructions, earlier calls told in words.
    answer = render(request("none", *turns))
    assert "You can use these tools" not in answer
    assert 'Assistant: (I used the tool calculator with {"expression": "1+1"}.)' in answer


def test_every_turn_marker_stops_a_reply() -> None:
    plain = GenerationRequest(request_id="r", turns=(Turn(Role.USER, "hi"),), stop=("END",))
    assert stops(plain) == ["END", *TURN_STOPS]
    assert set(TURN_STOPS) == {"\nUser:", "\nAssistant:", "\nSystem:", "\nTool ("}
    # A constrained tool call has no stop strings of its own: its JSON strings may hold anything.
    assert stops(request("calculator")) == []


def test_a_chat_template_renders_turns_and_stops_at_its_turn_end() -> None:
    template = ChatTemplate(GEMMA_TEMPLATE, eos_token="<eos>")
    assert template.stops == ["<end_of_turn>", "<eos>"]
    prompt = template.render(
        GenerationRequest(request_id="r", turns=(Turn(Role.SYSTEM, "Be brief."), Turn(Role.USER, "Hi")))
    )
    assert prompt == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    call = ProposedCall(call_id="c1", name="calculator", arguments={"expression": "1+1"})
    turns = (
        Turn(Role.USER, "1+1?"),
        Turn(Role.ASSISTANT, "", tool_calls=(call,)),
        Turn(Role.TOOL, "2", tool_call_id="c1", tool_name="calculator"),
    )
    with_tools = template.render(request("auto", *turns))
    assert '<start_of_turn>model\n{"tool": "calculator", "arguments": {"expression": "1+1"}}<end_of_turn>' in with_tools
    assert "<start_of_turn>user\nTool (calculator): 2<end_of_turn>\n<start_of_turn>model\n" in with_tools


def test_triton_vllm_gets_the_call_schema_as_structured_output() -> None:
    message = build_request(request("calculator"), model_name="m", convention="vllm")
    sampling = json.loads(decode_request_inputs(message)["sampling_parameters"][0])
    assert json.loads(sampling["guided_decoding"]) == {"json": call_schema((CALCULATOR, CLOCK), "calculator")}
    plain = build_request(GenerationRequest(request_id="r", prompt="x"), model_name="m", convention="vllm")
    assert "guided_decoding" not in json.loads(decode_request_inputs(plain)["sampling_parameters"][0])


def _catalogue(tmp_path: Path, *configs: ModelConfig) -> Catalogue:
    models = [
        ServedModel(config, build_backend(config, models_dir=tmp_path, parallel=1, max_waiting=1, preload=False))
        for config in configs
    ]
    return Catalogue(models)


def test_the_router_sends_tool_requests_to_a_model_that_can_call_tools(tmp_path: Path) -> None:
    base = ModelConfig(key="base", backend="openai", base_url="http://x/v1", api="completions", context_window=8192)
    local = ModelConfig(key="local", backend="local", context_window=2048)
    catalogue = _catalogue(tmp_path, base, local)
    assert catalogue.resolve("auto", prompt_chars=10, max_tokens=10).key == "base"
    assert catalogue.resolve("auto", prompt_chars=10, max_tokens=10, needs_tools=True).key == "local"
    with pytest.raises(InvalidArgument, match="cannot call tools"):
        catalogue.resolve("base", prompt_chars=10, max_tokens=10, needs_tools=True)
    assert [base.tool_calls, local.tool_calls] == ["none", "grammar"]
    no_tools = _catalogue(tmp_path, base)
    with pytest.raises(InvalidArgument, match="No configured model can call tools"):
        no_tools.resolve("auto", prompt_chars=10, max_tokens=10, needs_tools=True)
