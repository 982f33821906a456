"""Log lines with their severity, for journald and for a terminal.

Under systemd, mynad's stderr is a journal stream (``JOURNAL_STREAM`` is set). journald reads
a ``<N>`` prefix (sd-daemon(3); syslog priority: 3 error, 4 warning, 6 info, 7 debug) at the
start of each line and files the line with that priority, so ``journalctl -u mynad -p warning``
shows exactly the warnings and errors. The journal stamps each line itself, so no time is
printed there; on a terminal (mynasim, a technician running mynad by hand) lines keep their
time and level name.
"""

from __future__ import annotations

import logging
import os
import sys

# logging level -> syslog priority (sd-daemon's SD_ERR .. SD_DEBUG)
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def syslog_priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    """``<N>name: message``; every line of a multi-line record (a traceback) gets the prefix,
    because journald reads the priority per line."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def to_journal() -> bool:
    """True when stderr is the journal stream systemd gave us (JOURNAL_STREAM = device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if to_journal():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
