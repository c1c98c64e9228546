"""Chat turns rendered as a plain completion prompt.

The packaged model is a base model: its GGUF carries no chat template, and Gemma's turn
markers gave incoherent text where a plain transcript did not. Every text-in backend
(llama.cpp, Triton, OpenAI's completions API) uses this one template, so a conversation
reads the same whatever serves it:

    <system prompt>

    User: Quelle heure est-il à Paris ?
    Assistant: {"tool": "current_time", "arguments": {"timezone": "Europe/Paris"}}
    Tool (current_time): {"time": "14:03:00", ...}
    Assistant: Il est 14 h 03.
    User: Merci
    Assistant:

A local model whose GGUF does carry a chat template is rendered with it instead (see
local.py). Generation stops at every turn marker of the transcript, so a reply never
writes the user's next turn (or a tool's) itself.
"""

from __future__ import annotations

import json

from server.inference.backend import GenerationRequest, Role, Turn
from server.inference.toolcalls import instructions

SPEAKERS = {Role.USER: "User", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
# Every speaker line the transcript has: the model would otherwise write further turns.
TURN_STOPS = ("\nUser:", "\nAssistant:", "\nSystem:", "\nTool (")


def render(request: GenerationRequest) -> str:
    """The prompt text a completion model receives."""
    if not request.turns:
        return request.prompt
    system = "\n\n".join(turn.content.strip() for turn in request.turns if turn.role is Role.SYSTEM)
    if request.wants_tool_call:
        system = f"{system}\n\n{instructions(request.tools, request.tool_choice)}".strip()
    lines = [line(turn, as_json=request.wants_tool_call) for turn in request.turns if turn.role is not Role.SYSTEM]
    transcript = "\n".join([*lines, "Assistant:"])
    return f"{system}\n\n{transcript}" if system else transcript


def line(turn: Turn, *, as_json: bool = True) -> str:
    """One transcript line. Earlier tool calls are shown as the JSON the model writes while it
    calls tools, and as words when it is to answer (a small model copies what it sees last)."""
    if turn.role is Role.TOOL:
        return f"Tool ({turn.tool_name}): {turn.content.strip()}"
    text = turn.content.strip()
    for call in turn.tool_calls:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        shown = json.dumps({"tool": call.name, "arguments": call.arguments}, ensure_ascii=False)
        text = f"{text} {shown if as_json else f'(I used the tool {call.name} with {arguments}.)'}".strip()
    return f"{SPEAKERS[turn.role]}: {text}"


def stops(request: GenerationRequest) -> list[str]:
    """Stop strings: the caller's, plus the turn markers for chat requests (none while a tool
    call is being written: it is constrained to JSON, and its strings may hold anything)."""
    if request.wants_tool_call and request.constrain_tool_calls:
        return list(request.stop)
    return [*request.stop, *(TURN_STOPS if request.turns else ())]
