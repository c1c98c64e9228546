"""The newest lines this process logged, kept in memory for backups (logs/relais.log).

Relais logs to stderr, where the operator's supervisor keeps them; an archive still carries
the recent past, bounded, formatted and redacted as the console's lines are.

    recent = RecentLogs(limit=1024 * 1024)
    logging.getLogger().addHandler(recent)
    recent.text()    # b"2026-... INFO relais.server ...\n..."
"""

from __future__ import annotations

import logging
from collections import deque

from server.observability import RedactingFormatter

LIMIT_BYTES = 1024 * 1024


class RecentLogs(logging.Handler):
    def __init__(self, limit: int = LIMIT_BYTES) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self._limit = limit
        self._lines: deque[bytes] = deque()
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode("utf-8", "replace")[: self._limit - 1] + b"\n"
        except Exception:
            self.handleError(record)
            return
        # Called under the handler's lock (logging.Handler.handle).
        self._lines.append(line)
        self._size += len(line)
        while self._size > self._limit:
            self._size -= len(self._lines.popleft())

    def text(self) -> bytes:
        self.acquire()
        try:
            return b"".join(self._lines)
        finally:
            self.release()
