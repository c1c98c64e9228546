"""Tool calls from models that write text: the prompt that asks for one, the JSON Schema a
call must match (llama.cpp turns it into a grammar, vLLM into structured output), and the
parsing of what the model wrote.

A call is one JSON object: {"tool": "<name>", "arguments": {...}}. With tool_choice "auto"
the model may also write {"tool": "none"} to answer in words instead.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

from server.inference.backend import Chunk, Finish, ProposedCall, ToolSpec

NO_TOOL = "none"


def offered(tools: Sequence[ToolSpec], choice: str) -> list[ToolSpec]:
    """The tools a step may call: the named one, or all of them."""
    if choice not in ("auto", "required", NO_TOOL):
        return [tool for tool in tools if tool.name == choice]
    return list(tools)


def call_schema(tools: Sequence[ToolSpec], choice: str) -> dict[str, Any]:
    """The JSON Schema of what the model may write for this step."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.name}, "arguments": tool.parameters or {"type": "object"}},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for tool in offered(tools, choice)
    ]
    if choice == "auto":
        options.append(
            {
                "type": "object",
                "properties": {"tool": {"const": NO_TOOL}},
                "required": ["tool"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def instructions(tools: Sequence[ToolSpec], choice: str) -> str:
    """What the system prompt says about the tools of this step."""
    described = "\n".join(
        f"- {tool.name}: {tool.description} Arguments: {json.dumps(tool.parameters.get('properties', {}))}"
        for tool in offered(tools, choice)
    )
    lead = 'To call a tool, answer with one JSON object: {"tool": "<name>", "arguments": {...}}.'
    if choice == "auto":
        lead += ' To answer without a tool, answer {"tool": "none"}.'
    return f"You can use these tools.\n{described}\n{lead}"


def parse_call(text: str) -> ProposedCall | None:
    """The call in `text` (its first JSON object); None when the model chose no tool. Raises
    ValueError when `text` holds no call."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the output")
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON: {error.msg}") from None
    if not isinstance(value, dict) or not isinstance(value.get("tool"), str):
        raise ValueError('expected {"tool": "<name>", "arguments": {...}}')
    if value["tool"] == NO_TOOL:
        return None
    arguments = value.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ValueError("arguments must be a JSON object")
    return ProposedCall(call_id=new_call_id(), name=value["tool"], arguments=arguments)


def new_call_id() -> str:
    return "call_" + secrets.token_hex(8)


async def collect_call(chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """A tool-call step's chunks as one: the JSON text is held back (it is not an answer) and
    the last chunk carries the parsed call. Text that holds no call is kept as a failed call
    (name "", the text in arguments["_raw"]) for the caller to retry."""
    parts: list[str] = []
    tokens = prompt_tokens = 0
    finish: Finish | None = None
    try:
        async for chunk in chunks:
            parts.append(chunk.text)
            tokens += chunk.tokens
            prompt_tokens = chunk.prompt_tokens or prompt_tokens
            finish = chunk.finish or finish
    finally:
        # Closing this stream must stop the generation underneath at once.
        await chunks.aclose()  # type: ignore[attr-defined]
    text = "".join(parts)
    try:
        call = parse_call(text)
        calls = (call,) if call is not None else ()
    except ValueError as error:
        calls = (ProposedCall(call_id=new_call_id(), name="", arguments={"_raw": text, "_error": str(error)}),)
    yield Chunk(tokens=tokens, prompt_tokens=prompt_tokens, finish=finish or Finish.STOP, tool_calls=calls)
