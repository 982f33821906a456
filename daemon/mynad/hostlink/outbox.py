"""The persistent outbox: every message to the host is on disk before it is sent.

SQLite in WAL mode with ``synchronous=FULL``: once ``put`` returns, the message
survives a power cut. It is deleted only when the host acknowledges its id (``ack``)
or moved to the ``rejected`` table when the host refuses it for good (``reject``);
nothing is ever dropped silently. Messages leave in the order they were stored.

The class is synchronous and not thread-safe on its own; ``HostLink`` calls it from
one dedicated worker thread so the event loop never waits on an fsync.

Also keeps the ids of messages *received* from the host (``seen``/``remember``), so
a host retransmission after a lost ACK is not delivered twice, even across restarts.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from mynad.durable import open_sqlite, transaction

DEFAULT_LIMIT = 10_000
SEEN_KEEP = 2_000


class OutboxFull(Exception):
    """The outbox holds its maximum number of unacknowledged messages."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    n       INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    body    TEXT NOT NULL,
    stored  REAL NOT NULL,
    tries   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rejected (
    n       INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL,
    type    TEXT NOT NULL,
    body    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    n       INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS closed (
    n        INTEGER PRIMARY KEY AUTOINCREMENT,
    visit_id TEXT NOT NULL UNIQUE
);
"""

# Message types that end a visit at the host; storing one records the visit as closed in the
# same transaction, so a restart can tell "ended, maybe not yet delivered" from "interrupted".
CLOSING_TYPES = ("visit.result", "visit.aborted")
CLOSED_KEEP = 2_000


class Outbox:
    def __init__(self, path: str | Path, limit: int = DEFAULT_LIMIT) -> None:
        self.path = Path(path)
        self.limit = limit
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, _SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: str | Path, limit: int = DEFAULT_LIMIT) -> "Outbox":
        return cls(Path(state_dir) / "outbox.sqlite", limit)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ outgoing

    def put(self, msg: dict[str, Any]) -> None:
        """Store a message (must have ``id`` and ``type``). Raises OutboxFull."""
        body = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            if count >= self.limit:
                raise OutboxFull(
                    f"the host outbox already holds {count} unacknowledged messages (limit {self.limit}); "
                    f"the host has not acknowledged anything for a long time, so {msg.get('type')} was not stored")
            visit_id = msg.get("visit_id") if msg.get("type") in CLOSING_TYPES else None
            with transaction(self._db) as db:
                db.execute("INSERT INTO outbox(id, type, body, stored) VALUES (?, ?, ?, ?)",
                           (str(msg["id"]), str(msg["type"]), body, time.time()))
                if isinstance(visit_id, str):  # the visit's end: closed in the same commit
                    db.execute("INSERT OR IGNORE INTO closed(visit_id) VALUES (?)", (visit_id,))
                    db.execute("DELETE FROM closed WHERE n <= (SELECT MAX(n) FROM closed) - ?", (CLOSED_KEEP,))

    def closed(self, visit_id: str) -> bool:
        """A visit.result or visit.aborted for ``visit_id`` was stored (whether or not the host
        has it yet): the visit ended, and a restart must not abort it a second time."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM closed WHERE visit_id = ?", (visit_id,)).fetchone() is not None

    def head(self) -> dict[str, Any] | None:
        """The oldest unacknowledged message, or None."""
        with self._lock:
            row = self._db.execute("SELECT body FROM outbox ORDER BY n LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM outbox ORDER BY n").fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def tried(self, msg_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET tries = tries + 1 WHERE id = ?", (msg_id,))

    def ack(self, msg_id: str) -> bool:
        """The host has the message: delete it. False if it was not pending."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))
            return cur.rowcount > 0

    def reject(self, msg_id: str, reason: str) -> bool:
        """The host refused the message for good: keep it aside, out of the queue."""
        with self._lock:
            row = self._db.execute("SELECT type, body FROM outbox WHERE id = ?", (msg_id,)).fetchone()
            if row is None:
                return False
            with transaction(self._db) as db:
                db.execute("INSERT INTO rejected(id, type, body, reason, at) VALUES (?, ?, ?, ?, ?)",
                           (msg_id, row[0], row[1], reason, time.time()))
                db.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))
            return True

    def rejected(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, type, reason, at FROM rejected ORDER BY n").fetchall()
        return [{"id": r[0], "type": r[1], "reason": r[2], "at": r[3]} for r in rows]

    # ------------------------------------------------------------ incoming de-duplication

    def seen(self, msg_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM seen WHERE id = ?", (msg_id,)).fetchone() is not None

    def remember(self, msg_id: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO seen(id) VALUES (?)", (msg_id,))
            self._db.execute("DELETE FROM seen WHERE n <= (SELECT MAX(n) FROM seen) - ?", (SEEN_KEEP,))


class MemoryOutbox:
    """The same interface in memory (the virtual host; tests)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._q: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        self._seen: dict[str, None] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        pass

    def put(self, msg: dict[str, Any]) -> None:
        with self._lock:
            if len(self._q) >= self.limit:
                raise OutboxFull(f"the outbox already holds {len(self._q)} unacknowledged messages")
            self._q.append(json.loads(json.dumps(msg)))

    def head(self) -> dict[str, Any] | None:
        with self._lock:
            return self._q[0] if self._q else None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._q)

    def count(self) -> int:
        with self._lock:
            return len(self._q)

    def tried(self, msg_id: str) -> None:
        pass

    def ack(self, msg_id: str) -> bool:
        with self._lock:
            for i, m in enumerate(self._q):
                if m["id"] == msg_id:
                    del self._q[i]
                    return True
        return False

    def reject(self, msg_id: str, reason: str) -> bool:
        with self._lock:
            for i, m in enumerate(self._q):
                if m["id"] == msg_id:
                    del self._q[i]
                    self._rejected.append({"id": msg_id, "type": m.get("type"), "reason": reason, "at": time.time()})
                    return True
        return False

    def rejected(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._rejected)

    def seen(self, msg_id: str) -> bool:
        with self._lock:
            return msg_id in self._seen

    def remember(self, msg_id: str) -> None:
        with self._lock:
            self._seen[msg_id] = None
            while len(self._seen) > SEEN_KEEP:
                self._seen.pop(next(iter(self._seen)))
