"""One test bench per machine: a lock around the real pcscd and its vpcd reader.

There is one pcscd and one vpcd port (35963) on a machine; two test runs (or a soak and a
test run) that both plug a virtual card in would talk to each other's card and fail in
strange ways. Whoever uses that reader holds this lock (``flock`` on a file, dropped by the
kernel when the process dies, so a killed run never leaves it held). Inside one process the
lock is counted, so a rig and the card slot it creates can both hold it. A child process started
while it is held (a test running ``mynasim demo``) inherits ``MYNA_BENCH_HELD`` and uses the
bench under its parent's lock instead of waiting for it forever.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from pathlib import Path
from typing import IO

LOCK_PATH = Path(os.environ.get("MYNA_RIG_LOCK", "/tmp/mynasim-rig.lock"))
HELD_ENV = "MYNA_BENCH_HELD"  # set while this process holds the lock; children inherit it

_guard = threading.Lock()
_file: IO[str] | None = None
_count = 0


def acquire() -> None:
    """Hold the bench; waits (saying so once) while another process holds it."""
    global _file, _count
    with _guard:
        if _count == 0 and _held_by_ancestor():
            _count += 1  # an ancestor holds the bench for us (its child inherited the variable)
            return
        if _count == 0:
            f = open(LOCK_PATH, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"mynasim: another run holds the test bench ({LOCK_PATH}); waiting for it", file=sys.stderr,
                      flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
            _file = f
            os.environ[HELD_ENV] = str(os.getpid())
        _count += 1


def _held_by_ancestor() -> bool:
    holder = os.environ.get(HELD_ENV, "")
    if not holder.isdigit() or int(holder) == os.getpid():
        return False
    pid = os.getppid()
    while pid > 1:  # the holder must be one of our ancestors, and alive
        if pid == int(holder):
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def release() -> None:
    global _file, _count
    with _guard:
        if _count == 0:
            return
        _count -= 1
        if _count == 0 and _file is not None:
            _file.close()  # closing drops the flock
            _file = None
            if os.environ.get(HELD_ENV) == str(os.getpid()):
                del os.environ[HELD_ENV]
