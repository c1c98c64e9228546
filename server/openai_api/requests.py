"""OpenAI's request protos as the service's values, every field checked: a bad field is a
ValidationFailed naming it (`messages[2].tool_calls[0].function.arguments`), which the bridge
answers as OpenAI's 400 with that `param`.

    chat_request(CreateChatCompletionRequest(model="auto", messages=[{"role": "user",
                 "content": "Hi"}]), via=()) == ChatRequest(model="auto", turns=(Turn(USER, "Hi"),))
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
from google.protobuf import json_format, struct_pb2
from relais.v1 import openai_pb2

from server.errors import FieldViolation, ValidationFailed
from server.inference.backend import JsonFormat, ProposedCall, Role, ToolSpec, Turn
from server.openai_api.values import NEW_CONVERSATION, NOT_STORED, ChatRequest, CompletionRequest, Sampling

MAX_MESSAGES = 1000
MAX_TOOLS = 128
MAX_STOPS = 4
MAX_METADATA = 16
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHOICES = ("auto", "none", "required")
ROLES = {
    openai_pb2.CHAT_COMPLETION_ROLE_SYSTEM: Role.SYSTEM,
    openai_pb2.CHAT_COMPLETION_ROLE_DEVELOPER: Role.SYSTEM,
    openai_pb2.CHAT_COMPLETION_ROLE_USER: Role.USER,
    openai_pb2.CHAT_COMPLETION_ROLE_ASSISTANT: Role.ASSISTANT,
    openai_pb2.CHAT_COMPLETION_ROLE_TOOL: Role.TOOL,
}
ANY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldViolation(field=field, message=message)], message=f"{field} {message}")


def plain(message: Any, field: str) -> Any:
    """A Value or Struct field as plain JSON (None when unset)."""
    return whole_numbers(json_format.MessageToDict(getattr(message, field))) if message.HasField(field) else None


def whole_numbers(value: Any) -> Any:
    """JSON as the client wrote it: a Struct holds every number as a double, so integral ones
    become integers again (`"maxLength": 40`, not 40.0, which a JSON Schema reader may refuse)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def chat_request(request: openai_pb2.CreateChatCompletionRequest, *, via: tuple[str, ...]) -> ChatRequest:
    if request.HasField("n") and request.n != 1:
        raise invalid("n", "must be 1: Relais writes one choice per request")
    if not request.messages:
        raise invalid("messages", "must hold at least one message")
    if len(request.messages) > MAX_MESSAGES:
        raise invalid("messages", f"must hold at most {MAX_MESSAGES} messages")
    max_tokens = request.max_completion_tokens if request.HasField("max_completion_tokens") else None
    if max_tokens is None and request.HasField("max_tokens"):
        max_tokens = request.max_tokens
    return ChatRequest(
        model=request.model,
        turns=tuple(turns(request.messages)),
        sampling=sampling(request, max_tokens=max_tokens),
        client_tools=client_tools(request.tools),
        relais_tools=tuple(dict.fromkeys(request.relais_tools)),
        tool_choice=tool_choice(plain(request, "tool_choice")),
        json_format=json_format_of(request),
        conversation=conversation(request),
        via=via,
    )


def completion_request(request: openai_pb2.CreateCompletionRequest, *, via: tuple[str, ...]) -> CompletionRequest:
    if request.HasField("n") and request.n != 1:
        raise invalid("n", "must be 1: Relais writes one choice per request")
    prompt = plain(request, "prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise invalid("prompt", "must be a string, or a list holding one string (token arrays are not read)")
    # 16 tokens when unset, as OpenAI's legacy API.
    max_tokens = request.max_tokens if request.HasField("max_tokens") else 16
    return CompletionRequest(
        model=request.model,
        prompt=prompt,
        sampling=sampling(request, max_tokens=max_tokens),
        echo=request.echo,
        via=via,
    )


def sampling(request: Any, *, max_tokens: int | None) -> Sampling:
    return Sampling(
        max_tokens=max_tokens,
        temperature=request.temperature if request.HasField("temperature") else None,
        top_p=request.top_p if request.HasField("top_p") else None,
        stop=stops(plain(request, "stop")),
        seed=request.seed if request.HasField("seed") else None,
    )


def stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
        raise invalid("stop", "must be a string or a list of strings")
    if len(found) > MAX_STOPS:
        raise invalid("stop", f"must hold at most {MAX_STOPS} strings")
    return tuple(item for item in found if item)


def turns(messages: Any) -> Iterator[Turn]:
    """The messages as turns; a tool message names the tool of the call it answers."""
    tools_by_call: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = ROLES.get(message.role)
        if role is None:
            raise invalid(f"{where}.role", "is required: system, developer, user, assistant or tool")
        text = content(plain(message, "content"), f"{where}.content")
        if role is Role.TOOL:
            if message.tool_call_id not in tools_by_call:
                raise invalid(f"{where}.tool_call_id", "must name a tool call of an earlier assistant message")
            tool = tools_by_call[message.tool_call_id]
            yield Turn(Role.TOOL, text, tool_call_id=message.tool_call_id, tool_name=tool)
            continue
        calls = tuple(tool_calls(message.tool_calls, where)) if role is Role.ASSISTANT else ()
        tools_by_call.update((call.call_id, call.name) for call in calls)
        yield Turn(role, text, tool_calls=calls)


def content(value: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a list, in order."""
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, list):
        raise invalid(where, "must be a string or a list of content parts")
    texts = []
    for index, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("text", "refusal") or not isinstance(part.get(kind), str):
            shown = kind if isinstance(kind, str) else "this part"
            raise invalid(f"{where}[{index}]", f"only text parts are read; the models here take no {shown}")
        texts.append(part[kind])
    return "\n".join(texts)


def tool_calls(calls: Any, where: str) -> Iterator[ProposedCall]:
    for index, call in enumerate(calls):
        path = f"{where}.tool_calls[{index}]"
        if not call.id:
            raise invalid(f"{path}.id", "is required")
        if not NAME.match(call.function.name):
            raise invalid(f"{path}.function.name", "must be 1 to 64 letters, digits, underscores or dashes")
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError as error:
            raise invalid(f"{path}.function.arguments", f"must be a JSON object: {error.msg}") from None
        if not isinstance(arguments, dict):
            raise invalid(f"{path}.function.arguments", "must be a JSON object")
        yield ProposedCall(call_id=call.id, name=call.function.name, arguments=arguments)


def client_tools(tools: Any) -> tuple[ToolSpec, ...]:
    if len(tools) > MAX_TOOLS:
        raise invalid("tools", f"must hold at most {MAX_TOOLS} tools")
    specs: dict[str, ToolSpec] = {}
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if tool.type not in ("function", ""):
            raise invalid(f"{where}.type", 'must be "function" (Relais\' own tools go in relais_tools)')
        function = tool.function
        if not NAME.match(function.name):
            raise invalid(f"{where}.function.name", "must be 1 to 64 letters, digits, underscores or dashes")
        if function.name in specs:
            raise invalid(f"{where}.function.name", f"{function.name!r} is offered twice")
        parameters = plain(function, "parameters") or ANY_OBJECT
        check_schema(parameters, f"{where}.function.parameters")
        specs[function.name] = ToolSpec(name=function.name, description=function.description, parameters=parameters)
    return tuple(specs.values())


def check_schema(schema: dict[str, Any], where: str) -> None:
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise invalid(where, f"is not a valid JSON Schema: {error.message}") from None


def tool_choice(value: Any) -> str:
    """ "" when unset; "auto", "none", "required", or the name of the one tool to call."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value not in CHOICES:
            raise invalid("tool_choice", 'must be "none", "auto", "required" or {"type": "function", ...}')
        return value
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise invalid("tool_choice", 'must be "none", "auto", "required" or {"type": "function", "function": {"name"}}')
    return name


def json_format_of(request: openai_pb2.CreateChatCompletionRequest) -> JsonFormat | None:
    wanted = request.response_format
    if wanted.type in ("", "text"):
        return None
    if wanted.type == "json_object":
        return JsonFormat()
    if wanted.type != "json_schema":
        raise invalid("response_format.type", 'must be "text", "json_object" or "json_schema"')
    described = wanted.json_schema
    if not described.HasField("schema"):
        raise invalid("response_format.json_schema.schema", "is required")
    name = described.name or "response"
    if not NAME.match(name):
        raise invalid("response_format.json_schema.name", "must be 1 to 64 letters, digits, underscores or dashes")
    schema = whole_numbers(json_format.MessageToDict(described.schema))
    check_schema(schema, "response_format.json_schema.schema")
    return JsonFormat(schema=schema, name=name, strict=described.strict)


def conversation(request: openai_pb2.CreateChatCompletionRequest) -> str:
    if len(request.metadata) > MAX_METADATA:
        raise invalid("metadata", f"must hold at most {MAX_METADATA} pairs")
    named = str(request.metadata.get("conversation_id", "")).strip()
    if named:
        return named
    return NEW_CONVERSATION if request.HasField("store") and request.store else NOT_STORED


def plain_value(value: struct_pb2.Value | None) -> Any:
    return json_format.MessageToDict(value) if value is not None else None


def texts(value: struct_pb2.Value | None) -> list[str]:
    """The input of /v1/embeddings: a string or a list of strings."""
    found = plain_value(value)
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, list) or not found:
        raise invalid("input", "must be a string or a non-empty list of strings")
    if not all(isinstance(item, str) for item in found):
        raise invalid("input", "must be text: token arrays are another tokenizer's and are not read")
    return found
