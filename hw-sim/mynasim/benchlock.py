"""One test bench per machine: a lock around the real pcscd and its vpcd reader.

There is one pcscd and one vpcd port (35963) on a machine; two test runs (or a soak and a
test run) that both plug a virtual card in would talk to each other's card and fail in
strange ways. Whoever uses that reader holds this lock (``flock`` on a file, dropped by the
kernel when the process dies, so a killed run never leaves it held). Inside one process the
lock is counted, so a rig and the card slot it creates can both hold it.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from pathlib import Path
from typing import IO

LOCK_PATH = Path(os.environ.get("MYNA_RIG_LOCK", "/tmp/mynasim-rig.lock"))

_guard = threading.Lock()
_file: IO[str] | None = None
_count = 0


def acquire() -> None:
    """Hold the bench; waits (saying so once) while another process holds it."""
    global _file, _count
    with _guard:
        if _count == 0:
            f = open(LOCK_PATH, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"mynasim: another run holds the test bench ({LOCK_PATH}); waiting for it", file=sys.stderr,
                      flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
            _file = f
        _count += 1


def release() -> None:
    global _file, _count
    with _guard:
        if _count == 0:
            return
        _count -= 1
        if _count == 0 and _file is not None:
            _file.close()  # closing drops the flock
            _file = None
