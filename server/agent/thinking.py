"""Reasoning a model writes inside its text, between <think> and </think> (Qwen3, DeepSeek-R1
and others, when the server has no reasoning parser): told apart from the answer as it streams.

    splitter = ThinkSplitter()
    splitter.feed("<think>Let me see")   == ("Let me see", "")
    splitter.feed("…</think>Paris.")     == ("…", "Paris.")
"""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkSplitter:
    def __init__(self) -> None:
        self._thinking = False
        self._held = ""

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, answer) in `text`; a tag cut between two pieces is held until it is whole."""
        text, self._held = self._held + text, ""
        thought: list[str] = []
        answer: list[str] = []
        while text:
            tag = CLOSE if self._thinking else OPEN
            at = text.find(tag)
            if at < 0:
                keep = _partial_suffix(text, tag)
                text, self._held = text[: len(text) - keep], text[len(text) - keep :]
                (thought if self._thinking else answer).append(text)
                break
            (thought if self._thinking else answer).append(text[:at])
            text, self._thinking = text[at + len(tag) :], not self._thinking
        return "".join(thought), "".join(answer)

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return (held, "") if self._thinking else ("", held)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that begins `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
