"""A plugin's output: the last N lines, bounded in count and in line length, and the rate it
arrives at (a plugin writing faster than the limit is stopped: reading a flood costs Relais CPU)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_LINE = 4096
READ_PIECE = 64 * 1024
RATE_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class LogLine:
    time: float
    stream: str
    text: str


class PluginLog:
    def __init__(self, *, max_lines: int = 2000, max_bytes_per_second: int = 1024 * 1024) -> None:
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self.dropped = 0
        self._rate_limit = max_bytes_per_second
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def add(self, stream: str, text: str) -> None:
        if len(self._lines) == self._lines.maxlen:
            self.dropped += 1
        self._lines.append(LogLine(time=time.time(), stream=stream, text=text[:MAX_LINE]))

    def note(self, text: str) -> None:
        """What Relais itself records about the plugin (starts, exits, restarts)."""
        self.add("relais", text)

    def tail(self, count: int) -> list[LogLine]:
        lines = list(self._lines)
        return lines[-count:] if count > 0 else []

    def last_error_lines(self, count: int = 3, width: int = 200) -> str:
        """The last lines of stderr, each cut to `width` characters, for an error message."""
        errors = [line.text for line in self._lines if line.stream == "stderr"]
        return " | ".join(text if len(text) <= width else text[:width] + "…" for text in errors[-count:])

    def count_bytes(self, size: int) -> bool:
        """Record `size` bytes read; False when the rate over the window exceeds the limit."""
        now = time.monotonic()
        if now - self._window_start > RATE_WINDOW:
            self._window_start, self._window_bytes = now, 0
        self._window_bytes += size
        return self._window_bytes <= self._rate_limit * RATE_WINDOW


async def pump(reader: asyncio.StreamReader, stream: str, log: PluginLog, flooded: Callable[[], None]) -> None:
    """Copy a pipe into the log line by line until it closes; call `flooded` once if the plugin
    writes faster than the log's rate limit."""
    pending = b""
    warned = False
    while piece := await reader.read(READ_PIECE):
        if not log.count_bytes(len(piece)) and not warned:
            warned = True
            flooded()
        pending += piece
        *complete, pending = pending.split(b"\n")
        for line in complete:
            log.add(stream, line.decode(errors="replace").rstrip("\r"))
        if len(pending) > MAX_LINE:
            log.add(stream, pending[:MAX_LINE].decode(errors="replace"))
            pending = b""
    if pending:
        log.add(stream, pending.decode(errors="replace"))
