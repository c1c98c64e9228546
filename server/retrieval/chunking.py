"""Cut extracted text into passages that remember exactly where they came from.

Every span is a pair of character offsets into the text, so a passage's text is always
`text[start:end]` and a citation can be checked against the source. Cuts fall on the best
boundary available near the size limit (paragraph, line, sentence, word), passages overlap
a little so an idea split at a cut is still found whole in one of them, and neither end of
a passage is whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass

# Separators tried in order, best first; a cut goes just after one.
_BOUNDARIES = ("\n\n", "\n", ". ", "? ", "! ", "; ", " ")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


def chunk_spans(text: str, *, size: int = 800, overlap: int = 100) -> list[Span]:
    """Spans of at most `size` characters covering every non-blank part of `text`.

    >>> text = "One idea. Another idea.\\n\\nA new paragraph."
    >>> [text[s.start : s.end] for s in chunk_spans(text, size=30, overlap=0)]
    ['One idea. Another idea.', 'A new paragraph.']
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    spans: list[Span] = []
    length = len(text)
    start = _skip_space(text, 0, length)
    while start < length:
        limit = min(start + size, length)
        cut = limit if limit == length else _best_cut(text, start + size // 2, limit)
        end = cut
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append(Span(start, end))
        if cut >= length:
            break
        # Step back by the overlap, then forward to the next word so no passage opens mid-word.
        following = _word_start(text, max(cut - overlap, start + 1), cut)
        start = _skip_space(text, following, length)
    return spans


def _best_cut(text: str, low: int, high: int) -> int:
    for separator in _BOUNDARIES:
        found = text.rfind(separator, low, high)
        if found != -1:
            return found + len(separator)
    return high


def _word_start(text: str, position: int, limit: int) -> int:
    if position == 0 or text[position - 1].isspace():
        return position
    for index in range(position, limit):
        if text[index].isspace():
            return index + 1
    return position


def _skip_space(text: str, position: int, length: int) -> int:
    while position < length and text[position].isspace():
        position += 1
    return position
