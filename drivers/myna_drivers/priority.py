"""Thread priority for the few threads a patient would notice being late.

A key press lasts 80-150 ms. When the face engine and the card-face OCR keep every
core busy (right after a card is placed, while the patient starts typing), a scanner
thread at the same priority as the number-crunching threads can go without the CPU for
longer than a press, and the press is lost (seen on an emulated Pi 4 and in CI). The
keypad scanner therefore asks the kernel for a better nice value for itself alone
(Linux sets nice per thread); the heavy workers keep theirs. Lowering a nice value needs
CAP_SYS_NICE (root, or the unit's ``AmbientCapabilities=CAP_SYS_NICE``); without it the
thread runs as before and this says so once in the log.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("myna.priority")

LATENCY_NICE = -10
_warned = False


def prefer_this_thread(what: str, nice: int = LATENCY_NICE) -> bool:
    """Give the calling thread the nice value ``nice``; False (logged once) when not allowed."""
    global _warned
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        return True
    except (PermissionError, OSError, AttributeError) as e:
        if not _warned:
            _warned = True
            log.info("%s runs at normal priority (%s): give the service CAP_SYS_NICE so that presses "
                     "are never late under load", what, getattr(e, "strerror", None) or e)
        return False
