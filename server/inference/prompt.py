"""Chat turns rendered as a plain completion prompt.

The default model behaves as a base model: its chat template gave incoherent text,
a plain transcript did not. Every text-in backend (llama.cpp, Triton, OpenAI's
completions API) uses this one template, so a conversation reads the same whatever
serves it:

    <system prompt>

    User: Bonjour
    Assistant: Bonjour ! Que puis-je faire ?
    User: Quelle heure est-il ?
    Assistant:
"""

from __future__ import annotations

from server.inference.backend import GenerationRequest, Role, Turn

SPEAKERS = {Role.USER: "User", Role.ASSISTANT: "Assistant"}
# The model would otherwise go on writing the user's next turn.
TURN_STOPS = ("\nUser:",)


def render(request: GenerationRequest) -> str:
    """The prompt text a completion model receives."""
    if not request.turns:
        return request.prompt
    return render_turns(request.turns)


def render_turns(turns: tuple[Turn, ...]) -> str:
    system = "\n\n".join(turn.content.strip() for turn in turns if turn.role is Role.SYSTEM)
    lines = [f"{SPEAKERS[turn.role]}: {turn.content.strip()}" for turn in turns if turn.role is not Role.SYSTEM]
    transcript = "\n".join([*lines, "Assistant:"])
    return f"{system}\n\n{transcript}" if system else transcript


def stops(request: GenerationRequest) -> list[str]:
    """Stop strings: the caller's, plus the turn boundary for chat requests."""
    return [*request.stop, *(TURN_STOPS if request.turns else ())]
