"""Durable frame counters of the authenticated host link (``auth.py`` says what they are for).

One row per key (``key_id``, the key's fingerprint): ``send_limit`` (every counter this end
has used is below it; written *ahead*, a block at a time) and ``peer_hwm`` (the highest
counter accepted from the peer). SQLite in WAL mode with ``synchronous=FULL``: once a
``save_*`` returns, the value survives a power cut. Both only ever grow (``MAX`` in SQL), so
a late or repeated write can never move a counter back.

Its own file (``<state_dir>/hostlink-auth.sqlite``) rather than a table in the outbox: the
outbox is about messages, this is about the link's security state, and either can be
inspected or wiped on its own. (Wiping this file without re-keying is what opens a replay
window; see docs/host-protocol.md.) Synchronous and not thread-safe alone: the engine calls it
from its one store thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from mynad.durable import open_sqlite

FILE_NAME = "hostlink-auth.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key_id      TEXT PRIMARY KEY,
    send_limit  INTEGER NOT NULL DEFAULT 0,
    peer_hwm    INTEGER NOT NULL DEFAULT 0
);
"""


class CounterStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path) -> "CounterStore":
        return cls(Path(state_dir) / FILE_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def load(self, key_id: str) -> tuple[int, int] | None:
        """(send_limit, peer_hwm) for this key, or None if this key was never used here."""
        with self._lock:
            row = self._db.execute("SELECT send_limit, peer_hwm FROM counters WHERE key_id = ?", (key_id,)).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def save_send_limit(self, key_id: str, limit: int) -> None:
        self._save("send_limit", key_id, limit)

    def save_peer_hwm(self, key_id: str, hwm: int) -> None:
        self._save("peer_hwm", key_id, hwm)

    def _save(self, column: str, key_id: str, value: int) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT INTO counters(key_id, {column}) VALUES (?, ?) "  # noqa: S608 (column is one of two names)
                f"ON CONFLICT(key_id) DO UPDATE SET {column} = MAX({column}, excluded.{column})",
                (key_id, int(value)))


class MemoryCounterStore:
    """The same interface in memory: for a virtual host without a state folder, and tests.

    Counters then restart from the clock floor (Unix µs) on each start, which still keeps
    them increasing as long as the clock does; a receiver's high-water mark starts at 0.
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def close(self) -> None:
        pass

    def load(self, key_id: str) -> tuple[int, int] | None:
        with self._lock:
            row = self._rows.get(key_id)
            return (row[0], row[1]) if row else None

    def save_send_limit(self, key_id: str, limit: int) -> None:
        with self._lock:
            row = self._rows.setdefault(key_id, [0, 0])
            row[0] = max(row[0], int(limit))
            self.writes += 1

    def save_peer_hwm(self, key_id: str, hwm: int) -> None:
        with self._lock:
            row = self._rows.setdefault(key_id, [0, 0])
            row[1] = max(row[1], int(hwm))
            self.writes += 1
