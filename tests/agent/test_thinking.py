"""Reasoning written between <think> tags is told apart from the answer, however it is cut."""

from __future__ import annotations

import pytest

from server.agent.thinking import ThinkSplitter


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 100])
def test_reasoning_and_answer_are_split_whatever_the_pieces(size: int) -> None:
    text = "<think>First, 6 * 7.\\nThat is 42.</think>The answer is 42. <b>bold</b> < 3"
    splitter = ThinkSplitter()
    thoughts, answers = [], []
    for start in range(0, len(text), size):
        thought, answer = splitter.feed(text[start : start + size])
        thoughts.append(thought)
        answers.append(answer)
    thought, answer = splitter.flush()
    assert "".join(thoughts) + thought == "First, 6 * 7.\\nThat is 42."
    assert "".join(answers) + answer == "The answer is 42. <b>bold</b> < 3"


def test_text_without_tags_is_all_answer() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Hello <thi") == ("", "Hello ")
    assert splitter.feed("s is fine") == ("", "<this is fine")
