"""Searching by words: BM25 over the store's analyzer, which leaves French and English function
words out (they match nearly every passage, so they only cost time and blur the ranking)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from server.retrieval.lite import MilvusLiteProcess
from server.retrieval.stopwords import STOP_WORDS
from server.retrieval.store import PassageFilter, PassageStore, StoredPassage

TEXTS = {
    # Stop words galore around one real word among several.
    "wordy": "La note de la réunion de la semaine et le compte rendu de la visite de l'imprimante",
    "short": "Imprimante en panne",
    "other": "Le pare-feu refuse les connexions",
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[PassageStore]:
    store = PassageStore(lite=MilvusLiteProcess(tmp_path / "milvus"), collection="words", dimension=4)
    passages = [
        StoredPassage(
            chunk_id=key,
            text=text,
            owner_id=1,
            scope="corpus",
            entity="corpus",
            source="s",
            sha256="0" * 64,
            path="p",
            start=0,
            end=len(text),
        )
        for key, text in TEXTS.items()
    ]
    await store.insert(passages, np.eye(len(passages), 4, dtype=np.float32))
    yield store
    await store.close()


async def by_words(store: PassageStore, text: str) -> list[str]:
    hits = await store.search(None, text, where=PassageFilter(), limit=10, mode="text")
    return [hit.passage.chunk_id for hit in hits]


async def test_a_query_of_function_words_alone_finds_nothing(store: PassageStore) -> None:
    assert await by_words(store, "le la de les et en") == []
    assert await by_words(store, "The and of a") == []


async def test_function_words_do_not_rank_a_passage_higher(store: PassageStore) -> None:
    # Counting "la" and "de", the wordy note would come first; on "imprimante" alone, the short
    # passage, where that word weighs more, does.
    assert await by_words(store, "la panne de la imprimante") == ["short", "wordy"]
    assert await by_words(store, "de la imprimante") == ["short", "wordy"]


async def test_words_that_carry_meaning_still_match(store: PassageStore) -> None:
    assert await by_words(store, "Pare-feu ?") == ["other"]


def test_elided_forms_are_stop_words_too() -> None:
    # The tokenizer splits "l'imprimante" and "qu'il" at the apostrophe.
    assert {"l", "d", "qu", "j", "n", "s", "c"} <= set(STOP_WORDS)
