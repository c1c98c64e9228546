"""The to-do lists, in a SQLite file of the plugin's working directory."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS items_owner ON items (owner, id);
"""


@dataclass(frozen=True)
class Item:
    id: int
    title: str
    created_at: float
    done_at: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "done": self.done_at is not None,
            "created_at": _rfc3339(self.created_at),
            "done_at": _rfc3339(self.done_at) if self.done_at is not None else None,
        }


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Store:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(SCHEMA)

    def items(self, owner: str, *, include_done: bool) -> list[Item]:
        query = "SELECT id, title, created_at, done_at FROM items WHERE owner = ?"
        query += "" if include_done else " AND done_at IS NULL"
        return [Item(*row) for row in self._db.execute(query + " ORDER BY id DESC", (owner,))]

    def add(self, owner: str, title: str) -> Item:
        now = time.time()
        cursor = self._db.execute("INSERT INTO items (owner, title, created_at) VALUES (?, ?, ?)", (owner, title, now))
        return Item(int(cursor.lastrowid or 0), title, now, None)

    def complete(self, owner: str, item_id: int) -> Item | None:
        self._db.execute(
            "UPDATE items SET done_at = ? WHERE owner = ? AND id = ? AND done_at IS NULL", (time.time(), owner, item_id)
        )
        row = self._db.execute(
            "SELECT id, title, created_at, done_at FROM items WHERE owner = ? AND id = ?", (owner, item_id)
        ).fetchone()
        return Item(*row) if row else None

    def delete(self, owner: str, item_id: int) -> bool:
        return self._db.execute("DELETE FROM items WHERE owner = ? AND id = ?", (owner, item_id)).rowcount > 0

    def purge_done(self, owner: str, older_than_days: int) -> int:
        horizon = time.time() - older_than_days * 86400
        cursor = self._db.execute("DELETE FROM items WHERE owner = ? AND done_at <= ?", (owner, horizon))
        return cursor.rowcount
