"""Passage filters: domain code names the passages it means with PassageFilter values and only the
store writes Milvus' filter syntax, so a value (a file name, an entity, a key) is always a value:
quotes and backslashes in it cannot change what the filter selects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from server.retrieval.lite import MilvusLiteProcess
from server.retrieval.store import PassageFilter, PassageStore, StoredPassage, milvus_filter

# Values that would end a string literal, escape its closing quote, or open a clause of their own.
HOSTILE = [
    'a"b',
    "back\\slash",
    'x" or chunk_id != "',
    "end\\",
    "it's",
    'u\\"',
    "line\nbreak",
    "cr\rtab\t",
    "a\x01b",
    "é ✓",
]


def test_each_field_is_rendered_with_its_value_quoted() -> None:
    where = PassageFilter(owner_id=7, scope="document", entity="chat:3", sources=("k1", "k2"))
    assert milvus_filter(where) == (
        'owner_id == 7 and scope == "document" and entity == "chat:3" and source in ["k1", "k2"]'
    )


def test_a_sequence_of_filters_means_any_of_them() -> None:
    where = [PassageFilter(owner_id=1, scope="document"), PassageFilter(scope="corpus")]
    assert milvus_filter(where) == '(owner_id == 1 and scope == "document") or (scope == "corpus")'


def test_an_empty_filter_matches_every_passage_and_no_filters_none() -> None:
    assert milvus_filter(PassageFilter()) == 'chunk_id != ""'
    assert milvus_filter([]) == 'chunk_id == ""'


@pytest.mark.parametrize("value", HOSTILE)
def test_quotes_and_backslashes_stay_inside_the_literal(value: str) -> None:
    rendered = milvus_filter(PassageFilter(entity=value))
    assert rendered.startswith('entity == "') and rendered.endswith('"')
    # Every quote inside the literal is escaped: the only bare ones open and close it.
    literal = rendered.removeprefix("entity == ")
    bare_quotes = [i for i, char in enumerate(literal) if char == '"' and not _escaped(literal, i)]
    assert bare_quotes == [0, len(literal) - 1]


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[PassageStore]:
    store = PassageStore(lite=MilvusLiteProcess(tmp_path / "milvus"), collection="filters", dimension=4)
    yield store
    await store.close()


def passage(index: int, *, entity: str, source: str, owner_id: int = 1) -> StoredPassage:
    return StoredPassage(
        chunk_id=f"c{index}",
        text=f"passage {index}",
        owner_id=owner_id,
        scope="document",
        entity=entity,
        source=source,
        sha256="0" * 64,
        path="p",
        start=0,
        end=9,
    )


async def test_milvus_matches_hostile_values_exactly_and_nothing_else(store: PassageStore) -> None:
    passages = [passage(index, entity=value, source=value) for index, value in enumerate(HOSTILE)]
    passages.append(passage(len(HOSTILE), entity="plain", source="plain", owner_id=2))
    await store.insert(passages, np.eye(len(passages), 4, dtype=np.float32))

    for value in HOSTILE:
        assert [p.chunk_id for p in await store.passages(PassageFilter(entity=value))] == [f"c{HOSTILE.index(value)}"]
        assert await store.count(PassageFilter(sources=(value,))) == 1
    assert await store.count(PassageFilter(entity='" or chunk_id != "')) == 0
    assert await store.count(PassageFilter(owner_id=2, sources=tuple(HOSTILE))) == 0
    assert await store.count(PassageFilter()) == len(passages)
    assert await store.count([PassageFilter(owner_id=2), PassageFilter(entity=HOSTILE[0])]) == 2

    await store.delete(PassageFilter(sources=('x" or chunk_id != "',)))
    assert await store.count(PassageFilter()) == len(passages) - 1
