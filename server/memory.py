"""The process's memory after a load, and the collector's pauses during one.

Two things made a Relais process slow and fat under many streams, neither in Relais' own code:

- The cyclic garbage collector. At start-up the process holds about 270,000 objects (grpc,
  SQLAlchemy, pydantic, numpy...) that live as long as it does; every full collection walked them
  all, 60 to 350 ms on two busy cores, with the event loop and every stream stopped meanwhile,
  and a burst of new streams triggers several. `settle()` moves them out of the collector's sight
  (gc.freeze) once the server is up.
- glibc's allocator keeps what Python frees (buffers of streams, merged texts, protobuf
  messages) in its arenas instead of giving it back, so a process that served a burst stayed
  hundreds of MB above its idle size: measured here, 20 MB of journal kept, 200 MB more held.
  Two causes: its mmap threshold rises to the size of the largest block freed (up to 32 MiB), so
  after one big message every large buffer comes from the heap, where one live neighbour pins
  it; and freed pages are only returned when the top of the heap is free. `tune_allocator()`
  fixes the threshold at 128 KiB (large buffers are mapped and unmapped on their own: measured,
  +71 MB after five 8 MiB streams became +29 MB), and `Trimmer` calls malloc_trim(0) once the
  streams of a load have ended.

Full collections are counted in `relais_gc_pause_seconds_total` (by generation).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("relais.memory")

GC_PAUSE = Counter("relais_gc_pause_seconds", "Time spent in the cyclic garbage collector.", ["generation"])
_started: list[float] = []


def _measure(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        GC_PAUSE.labels(str(info.get("generation", "?"))).inc(time.perf_counter() - _started.pop())


def settle() -> None:
    """Once the server is up: collect, then freeze what exists (it lives as long as the process),
    so later collections only walk what requests create. Also starts counting collector pauses."""
    gc.collect()
    gc.freeze()
    if _measure not in gc.callbacks:
        gc.callbacks.append(_measure)


# glibc's mallopt parameter: blocks from this size up are mapped on their own, and the
# threshold no longer follows the largest block freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has neither)
        return None
    return libc


def tune_allocator() -> None:
    """At start, before the threads: large blocks always mapped apart (see the module docstring)."""
    libc = _glibc()
    if libc is not None and not libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        log.warning("mallopt(M_MMAP_THRESHOLD) refused; memory freed after large streams may stay held")


def _malloc_trim() -> Callable[[], int] | None:
    libc = _glibc()
    return None if libc is None else lambda: int(libc.malloc_trim(0))


class Trimmer:
    """Gives freed memory back to the system after a load: call `tick()` periodically; once streams
    have ended and none runs, it trims at the next TRIMS ticks (what a load leaves is freed over a
    few seconds: journal writes, transport buffers, the settling of idempotency keys)."""

    TRIMS = 3

    def __init__(self, streaming: Callable[[], int], finished: Callable[[], int]) -> None:
        self._streaming = streaming
        self._finished = finished
        self._seen = 0
        self._left = 0
        self._trim = _malloc_trim()

    async def tick(self) -> None:
        if self._trim is None or self._streaming():
            return
        if (finished := self._finished()) != self._seen:
            self._seen, self._left = finished, self.TRIMS
        if not self._left:
            return
        self._left -= 1
        gc.collect()
        started = time.perf_counter()
        await asyncio.to_thread(self._trim)
        log.debug("memory given back to the system in %.1f ms", (time.perf_counter() - started) * 1000)
