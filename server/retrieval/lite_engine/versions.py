"""Which stored rows a search may return: the newest version of each key, not deleted.

Milvus Lite decides it per search by walking every row in Python; here it is worked out once
per set of sealed segments (they never change: a flush or a compaction makes a new set) and
corrected per search for what is not sealed yet, the memtable's rows and deletions.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class SealedVersions:
    """For one set of sealed segments, laid end to end: each row's sequence number, whether it
    holds its key's newest version among them, and where each key's rows are."""

    segments: tuple[Any, ...]
    offsets: np.ndarray  # where each segment starts in the concatenation
    seqs: np.ndarray
    newest: np.ndarray
    position: dict[Any, int]  # key -> a row holding its newest version
    repeated: dict[Any, list[int]]  # key -> all its rows, for keys stored more than once

    def rows_of(self, pk: Any) -> Iterable[int]:
        rows = self.repeated.get(pk)
        if rows is not None:
            return rows
        row = self.position.get(pk)
        return () if row is None else (row,)

    def newest_seq(self, pk: Any) -> int:
        row = self.position.get(pk)
        return -1 if row is None else int(self.seqs[row])


_sealed_lock = threading.Lock()
# Keyed by the segment objects' identities; each entry holds its segments, so that no identity
# is reused while it is cached. (A segment's file name is not a key: a collection dropped and
# created again numbers its files from 1 again.) Two sets: a hybrid search with partitions
# asks for the partitions' segments (dense) and for all of them (sparse).
_sealed: dict[tuple[int, ...], SealedVersions] = {}
KEPT_SETS = 2


def sealed_versions(segments: Sequence[Any]) -> SealedVersions:
    """The versions of `segments`, computed once per set: a sealed segment never changes."""
    key = tuple(id(segment) for segment in segments)
    found = _sealed.get(key)
    if found is not None:
        return found
    versions = _versions_of(tuple(segments))
    with _sealed_lock:
        while len(_sealed) >= KEPT_SETS:  # the oldest set goes (a compaction retired it, most likely)
            del _sealed[next(iter(_sealed))]
        _sealed[key] = versions
    return versions


def _versions_of(segments: tuple[Any, ...]) -> SealedVersions:
    sizes = [len(segment.pks) for segment in segments]
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if sizes else np.zeros(0, np.int64)
    seqs = np.concatenate([np.asarray(s.seqs, dtype=np.int64) for s in segments]) if sizes else np.zeros(0, np.int64)
    position: dict[Any, int] = {}
    repeated: dict[Any, list[int]] = {}
    seq_list = seqs.tolist()
    for row, pk in enumerate(itertools.chain.from_iterable(segment.pks for segment in segments)):
        held = position.get(pk)
        if held is None:
            position[pk] = row
            continue
        repeated.setdefault(pk, [held]).append(row)
        if seq_list[row] > seq_list[held]:
            position[pk] = row
    newest = np.zeros(len(seq_list), dtype=bool)
    newest[np.fromiter(position.values(), dtype=np.int64, count=len(position))] = True
    for pk, rows in repeated.items():  # rows sharing the newest sequence number all count
        best = seq_list[position[pk]]
        for row in rows:
            newest[row] = seq_list[row] == best
    return SealedVersions(segments, offsets, seqs, newest, position, repeated)


def live_rows(
    versions: SealedVersions,
    memtable_pks: Sequence[Any],
    memtable_seqs: Sequence[int],
    is_deleted: Callable[[Any, int], bool],
    tombstones: Iterable[tuple[Any, int]],
    pending: dict[Any, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Which sealed rows and which memtable rows hold their key's newest version, across both,
    and are not deleted (`tombstones`: sealed deletions, `pending`: deletions in the memtable,
    each as (key, sequence number); a deletion hides the versions older than itself)."""
    sealed = versions.newest.copy()
    seqs = [int(seq) for seq in memtable_seqs]
    newest_in_memtable: dict[Any, int] = {}
    for pk, seq in zip(memtable_pks, seqs, strict=True):
        if seq > newest_in_memtable.get(pk, -1):
            newest_in_memtable[pk] = seq
    for pk, seq in newest_in_memtable.items():
        if seq > versions.newest_seq(pk):
            for row in versions.rows_of(pk):
                sealed[row] = False
    for pk, deleted_at in itertools.chain(tombstones, pending.items()):
        hide_older(sealed, versions, pk, deleted_at)
    memtable = np.fromiter(
        (
            seq == max(newest_in_memtable[pk], versions.newest_seq(pk))
            and not is_deleted(pk, seq)
            and pending.get(pk, -1) <= seq
            for pk, seq in zip(memtable_pks, seqs, strict=True)
        ),
        dtype=bool,
        count=len(seqs),
    )
    return sealed, memtable


def hide_older(live: np.ndarray, versions: SealedVersions, pk: Any, deleted_at: int) -> None:
    """A deletion at `deleted_at` hides the versions of `pk` written before it."""
    for row in versions.rows_of(pk):
        if deleted_at > versions.seqs[row]:
            live[row] = False


def sealed_deletions(delta_index: Any) -> Iterable[tuple[Any, int]]:
    deletions: dict[Any, int] | None = getattr(delta_index, "_map", None)
    if deletions is None:
        deletions = dict(delta_index.snapshot)  # a property of Lite's DeltaIndex
    return deletions.items()
