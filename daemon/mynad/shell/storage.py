"""Disk space for the results the reader owes the host.

The outbox lives in the state directory, on the same SD card as the journal and the rest of
the system. When that filesystem fills up (a runaway log, a technician's copy), an SQLite
insert fails with "database or disk is full", and so can the delete after an ACK (a WAL
commit needs free pages too). A result the patient has already been told about must still be
written somewhere durable, so the reader keeps a *reserve*: a file of real, allocated blocks
in the state directory (``posix_fallocate``, then fsync), given back the moment a write
fails. The freed blocks are enough for thousands of messages; new visits stay refused until
the filesystem has room again and the reserve is back in place.

Everything here is blocking file-system work: the shell calls it from a worker thread.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

RESERVE_NAME = "space-reserve"
RESERVE_BYTES = 2 * 1024 * 1024  # ~5 000 outbox messages' worth of SQLite pages and WAL frames


def is_storage_error(exc: BaseException) -> bool:
    """True for errors that mean "the disk cannot take this write now" (full, read-only, I/O),
    as opposed to a bug; the message is kept and retried either way."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)
    if isinstance(exc, sqlite3.Error):  # SQLite's primary result code (the low byte of the extended one)
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_STORAGE
    return False


_SQLITE_STORAGE = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}


class SpaceReserve:
    def __init__(self, state_dir: Path, size: int = RESERVE_BYTES) -> None:
        self.path = Path(state_dir) / RESERVE_NAME
        self.size = size

    def free_bytes(self) -> int:
        st = os.statvfs(self.path.parent)
        return st.f_bavail * st.f_frsize

    def in_place(self) -> bool:
        try:
            return self.path.stat().st_blocks * 512 >= self.size
        except FileNotFoundError:
            return False

    def ensure(self) -> bool:
        """Put the reserve in place if the disk has room for it *and* as much again; True when
        it is in place (the filesystem is healthy)."""
        if self.in_place():
            return self.free_bytes() >= self.size
        if self.free_bytes() < 2 * self.size:
            return False
        tmp = self.path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> bool:
        """Give the reserved blocks back to the filesystem; True if there was a reserve."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        self.path.with_suffix(".tmp").unlink(missing_ok=True)
        return True
