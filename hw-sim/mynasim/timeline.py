"""The simulator's timeline: every observable thing, timestamped, in order.

Tests and the demo wait on it ("the next pin_entry screen"), and it is written as
JSONL so a failed CI run can be read afterwards like a logic-analyser trace.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Entry:
    t: float
    source: str  # card | host | display | keypad | camera | buzzer | led | rig
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class TimelineTimeout(AssertionError):
    """What the simulator waited for did not happen in time."""


class Timeline:
    """Entries in order, each with an absolute index (0, 1, 2 ... for the whole run).

    ``keep``: how many recent entries stay in memory (None: all). A soak of 10,000 visits
    makes ~1.5 M entries; everything is in ``timeline.jsonl`` anyway (the audit streams that
    file), so a long run keeps only a window. Indices stay absolute: ``len()`` counts every
    entry ever added, and a wait ``after`` an index that has left the window starts at the
    oldest kept entry.
    """

    def __init__(self, path: Path | None = None, keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError("a timeline must keep at least one entry in memory")
        self._entries: deque[Entry] = deque(maxlen=keep)
        self._base = 0  # absolute index of self._entries[0]
        self._cond = threading.Condition()
        self._t0 = time.monotonic()
        self._file = open(path, "a", encoding="utf-8") if path else None

    def add(self, source: str, kind: str, **data: Any) -> Entry:
        e = Entry(round(time.monotonic() - self._t0, 4), source, kind, data)
        with self._cond:
            if len(self._entries) == self._entries.maxlen:
                self._base += 1  # the oldest entry leaves the window
            self._entries.append(e)
            if self._file:
                self._file.write(json.dumps({"t": e.t, "source": source, "kind": kind, **data},
                                            ensure_ascii=False, default=str) + "\n")
                self._file.flush()
            self._cond.notify_all()
        return e

    def __len__(self) -> int:
        with self._cond:
            return self._base + len(self._entries)

    def entries(self, source: str | None = None, kind: str | None = None) -> list[Entry]:
        """The entries still in memory (all of them unless ``keep`` was given)."""
        with self._cond:
            return [e for e in self._entries
                    if (source is None or e.source == source) and (kind is None or e.kind == kind)]

    def since(self, after: int) -> tuple[list[Entry], int]:
        """Entries at index >= ``after`` (those still kept) and the index that follows them."""
        with self._cond:
            start = max(after, self._base) - self._base
            return list(islice(self._entries, start, None)), self._base + len(self._entries)

    def wait_for(self, pred: Callable[[Entry], bool], timeout: float, after: int = 0, what: str = "") -> Entry:
        """First entry at index >= ``after`` matching ``pred``; raise TimelineTimeout otherwise."""
        return self.wait_for_at(pred, timeout, after, what)[0]

    def wait_for_at(self, pred: Callable[[Entry], bool], timeout: float, after: int = 0,
                    what: str = "") -> tuple[Entry, int]:
        """Like ``wait_for``, with the index just after the entry found: where the next wait
        starts, without searching the timeline for the entry (O(new entries) per wait)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = after
            while True:
                i = max(i, self._base)
                for e in islice(self._entries, i - self._base, None):
                    i += 1
                    if pred(e):
                        return e, i
                left = deadline - time.monotonic()
                if left <= 0:
                    last = [f"{e.source}:{e.kind}:{e.data.get('screen', '')}"
                            for e in islice(self._entries, max(0, len(self._entries) - 8), None)]
                    raise TimelineTimeout(f"timed out after {timeout:.1f}s waiting for {what or 'an event'}; "
                                          f"last entries: {last}")
                self._cond.wait(left)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
