"""Passage spans and file recognition, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.retrieval.chunking import chunk_spans
from server.retrieval.extract import UnsupportedFile, extract_text, sniff
from tests.retrieval import files

words = st.sampled_from(["alpha", "beta.", "gamma;", "delta\n", "epsilon\n\n", "ζ", "x" * 300, "  ", "\t"])


@settings(max_examples=300, deadline=None)
@given(st.lists(words, max_size=400).map(" ".join), st.integers(50, 400), st.integers(0, 49))
def test_spans_are_exact_bounded_trimmed_and_cover_every_word(text: str, size: int, overlap: int) -> None:
    spans = chunk_spans(text, size=size, overlap=overlap)
    covered = set()
    for span in spans:
        assert 0 <= span.start < span.end <= len(text) and span.end - span.start <= size
        assert not text[span.start].isspace() and not text[span.end - 1].isspace()
        covered.update(range(span.start, span.end))
    assert all(index in covered for index, char in enumerate(text) if not char.isspace())
    assert [span.start for span in spans] == sorted({span.start for span in spans})


def test_cuts_prefer_paragraphs_then_sentences() -> None:
    text = "First paragraph, short.\n\nSecond one. It has two sentences and goes on for a while longer."
    spans = chunk_spans(text, size=40, overlap=0)
    assert text[spans[0].start : spans[0].end] == "First paragraph, short."
    assert text[spans[1].start : spans[1].end].startswith("Second one.")


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_spans("x", size=10, overlap=10)


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [
        ("a.pdf", files.pdf(["Bonjour"]), "application/pdf"),
        ("a.docx", files.docx(["Bonjour"]), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("a.png", files.png(), "image/png"),
        ("a.md", b"# Titre\n", "text/markdown"),
        ("a.yaml", b"key: value\n", "application/yaml"),
        ("README", b"plain text without extension\n", "text/plain"),
        ("noext", files.png(), "image/png"),
    ],
)
def test_kinds_come_from_content(name: str, data: bytes, mime: str) -> None:
    assert sniff(data, name).mime_type == mime


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.txt", files.pdf(["x"])),
        ("a.png", b"not an image at all"),
        ("a.docx", b"PK\x03\x04 but not a zip"),
        ("a.md", "caf\xe9".encode("latin-1")),
        ("a.svg", b"<svg/>"),
        ("a.txt", b""),
    ],
)
def test_content_that_contradicts_its_name_is_refused(name: str, data: bytes) -> None:
    with pytest.raises(UnsupportedFile):
        sniff(data, name)


def test_text_is_extracted_with_one_newline_convention() -> None:
    kind = sniff(b"a\r\nb\rc\n", "a.txt")
    assert extract_text(b"a\r\nb\rc\n", kind) == "a\nb\nc\n"
    assert "Bonjour le monde" in (extract_text(files.pdf(["Bonjour le monde"]), sniff(files.pdf(["x"]), "a.pdf")) or "")
    assert extract_text(files.png(), sniff(files.png(), "a.png")) is None


def test_archives_that_inflate_too_much_are_refused_before_reading() -> None:
    with pytest.raises(UnsupportedFile, match="bomb"):
        extract_text(files.docx_bomb(), sniff(files.docx_bomb(), "a.docx"))
