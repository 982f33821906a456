"""The simulator's timeline: every observable thing, timestamped, in order.

Tests and the demo wait on it ("the next pin_entry screen"), and it is written as
JSONL so a failed CI run can be read afterwards like a logic-analyser trace.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
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
    def __init__(self, path: Path | None = None) -> None:
        self._entries: list[Entry] = []
        self._cond = threading.Condition()
        self._t0 = time.monotonic()
        self._file = open(path, "a", encoding="utf-8") if path else None

    def add(self, source: str, kind: str, **data: Any) -> Entry:
        e = Entry(round(time.monotonic() - self._t0, 4), source, kind, data)
        with self._cond:
            self._entries.append(e)
            if self._file:
                self._file.write(json.dumps({"t": e.t, "source": source, "kind": kind, **data},
                                            ensure_ascii=False, default=str) + "\n")
                self._file.flush()
            self._cond.notify_all()
        return e

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def entries(self, source: str | None = None, kind: str | None = None) -> list[Entry]:
        with self._cond:
            return [e for e in self._entries
                    if (source is None or e.source == source) and (kind is None or e.kind == kind)]

    def wait_for(self, pred: Callable[[Entry], bool], timeout: float, after: int = 0, what: str = "") -> Entry:
        """First entry at index >= ``after`` matching ``pred``; raise TimelineTimeout otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = after
            while True:
                while i < len(self._entries):
                    e = self._entries[i]
                    i += 1
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    last = [f"{e.source}:{e.kind}:{e.data.get('screen', '')}" for e in self._entries[-8:]]
                    raise TimelineTimeout(f"timed out after {timeout:.1f}s waiting for {what or 'an event'}; "
                                          f"last entries: {last}")
                self._cond.wait(left)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
