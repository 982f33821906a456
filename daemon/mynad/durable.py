"""Files and databases that must survive a power cut: the one way the daemon writes them.

A reader is unplugged at the counter without warning, so every file the daemon keeps (the
open-visit note, the staff password record and its lockout, the host key) is replaced
atomically: written to a temporary file beside it, fsync'd, renamed over the old one, and the
directory fsync'd too (the rename is only durable once the directory is). After a power cut
the old file or the new one is there, never half of either. The SQLite stores (outbox,
link counters) open with WAL and ``synchronous=FULL`` for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

from mynad.release.atomic import fsync_dir, write_bytes

__all__ = ["atomic_write", "fsync_dir", "open_sqlite", "transaction"]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data``, durably, as a file of ``mode`` (whatever the umask) and,
    when given, ``owner`` (uid, gid). Raises OSError; the temporary file never stays behind.
    The one implementation is the installer's (mynad.release.atomic, stdlib only)."""
    write_bytes(path, data, mode, owner=owner)


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A durable SQLite database (WAL, fsync on every commit) with ``schema`` applied; autocommit
    mode, so multi-statement changes go through ``transaction``. Usable from any one thread at a
    time (the stores hold their own lock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All the statements inside commit together (one fsync) or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
