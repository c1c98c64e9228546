"""A conversation's turns as the model receives them, trimmed to its context window.

The system prompt is always kept; the oldest turns go first when the conversation no
longer fits, and the newest user message is always sent. Tokens are estimated at one per
4 characters plus a few for each turn's framing: the exact count depends on the model's
tokenizer, so a share of the window is held back for that error and for the reply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from server.inference.backend import Role, Turn

TURN_OVERHEAD = 4


def estimate(turn: Turn) -> int:
    return math.ceil(len(turn.content) / 4) + TURN_OVERHEAD


def fit(system_prompt: str, turns: Sequence[Turn], *, context_window: int, reply_tokens: int) -> tuple[Turn, ...]:
    """`turns` (oldest first, the new user message last) trimmed from the oldest end so that
    they, the system prompt and the reply fit the window (with a 10% margin)."""
    budget = int(context_window * 0.9) - reply_tokens
    system = (Turn(Role.SYSTEM, system_prompt),) if system_prompt.strip() else ()
    budget -= sum(estimate(turn) for turn in system)
    kept: list[Turn] = []
    for turn in reversed(turns):
        cost = estimate(turn)
        if kept and cost > budget:
            break
        kept.append(turn)
        budget -= cost
    # A reply must answer the user: never start the transcript with an assistant or tool turn.
    while len(kept) > 1 and kept[-1].role is not Role.USER:
        kept.pop()
    return (*system, *reversed(kept))
