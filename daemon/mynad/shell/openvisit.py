"""The visit in progress, kept on disk so a crash cannot leave it open at the host.

The host opens a visit when it receives ``visit.started`` and closes it on
``visit.result`` or ``visit.aborted``. Those final messages come from the running
flow; after kill -9, a watchdog kill or a power cut nobody sends them, and the
clinic's system keeps the visit open for good. So the daemon writes the visit id
here *before* ``visit.started`` leaves, removes it once the final message has been
handed to the host sender, and on start closes whatever is still recorded with
``visit.aborted`` (reason ``reader_restarted``).

The file (``<state_dir>/open-visit.json``) holds only the visit id and the start
time: no name, no certificate, nothing personal. Both the write and the removal
reach the disk (fsync of the file and of the directory) before returning, so a
power cut leaves either the old state or the new one, never a half-written file.

A crash between the final message and the removal makes the next start send
``visit.aborted`` for a visit the host has already closed; the host ignores an
abort for a closed or unknown visit (docs/host-protocol.md), so that is harmless,
whereas the opposite order could leave a visit open.

The record is removed only once the final message is durable in the outbox (the app
waits for it), so it can hold more than one visit: visit A has ended and its abort is
still on its way to the outbox when the next card opens visit B. The 10,000-visit soak
found what a one-visit record does then: B replaced A, a watchdog kill lost A's queued
abort, and the next start closed only B, leaving A open at the host. So the file lists
every visit whose end is not yet durable (at most ``MAX_OPEN``, oldest dropped first).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mynad.core import codes
from mynad.durable import atomic_write, fsync_dir

FILE_NAME = "open-visit.json"
ABORT_REASON = codes.READER_RESTARTED.reason  # "reader_restarted"
ABORT_CODE = codes.READER_RESTARTED.code  # "034": 03x, the visit ended before it was finished
_VISIT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
MAX_OPEN = 16  # visits whose end is not yet durable; more means the outbox has not stored for minutes


class OpenVisitError(Exception):
    """The record could not be written, read or removed; ``message`` says which and why."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class OpenVisit:
    visit_id: str
    started: str  # ISO 8601 with offset: for the technician reading the file, not for logic


def encode(visit: OpenVisit) -> str:
    """The file's text. Pure."""
    return json.dumps({"visit_id": visit.visit_id, "started": visit.started}, ensure_ascii=True) + "\n"


def decode(text: str) -> OpenVisit:
    """The record in ``text``; ``ValueError`` with a plain sentence if it is not one. Pure."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"not JSON ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    visit_id, started = data.get("visit_id"), data.get("started")
    if not isinstance(visit_id, str) or not _VISIT_ID.fullmatch(visit_id):
        raise ValueError("no valid visit_id")
    return OpenVisit(visit_id, started if isinstance(started, str) else "")


def encode_all(visits: list[OpenVisit]) -> str:
    """The file's text for several open visits. Pure."""
    return json.dumps({"visits": [{"visit_id": v.visit_id, "started": v.started} for v in visits]},
                      ensure_ascii=True) + "\n"


def decode_all(text: str) -> list[OpenVisit]:
    """Every visit in ``text`` (also the one-visit form older releases wrote); ``ValueError``
    with a plain sentence if it is neither. Pure."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"not JSON ({type(e).__name__})") from None
    if isinstance(data, dict) and "visits" in data:
        items = data["visits"]
        if not isinstance(items, list):
            raise ValueError("visits is not a list")
        return [decode(json.dumps(item)) for item in items]
    return [decode(text)]


class OpenVisitRecord:
    """``<state_dir>/open-visit.json``: the visits whose end is not yet durable, written durably.

    Blocking I/O (one small fsync'd write per visit start, one unlink per end): called
    from the event loop on purpose, so that the record is on disk before the
    ``visit.started`` queued right after it, in the same order as the flow decided.
    """

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / FILE_NAME

    def load(self) -> OpenVisit | None:
        """The most recently opened visit still recorded, or None (see ``load_all``)."""
        visits = self.load_all()
        return visits[-1] if visits else None

    def load_all(self) -> list[OpenVisit]:
        """The visits left open, oldest first. A record that cannot be parsed raises
        ``OpenVisitError`` (the daemon logs the sentence, then removes the file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as e:
            raise OpenVisitError(f"the open-visit record {self.path} is unreadable ({e})") from None
        try:
            return decode_all(text)
        except ValueError as e:
            raise OpenVisitError(f"the open-visit record {self.path} is damaged: {e}") from None

    def record(self, visit_id: str, started: dt.datetime | None = None) -> None:
        """Durably add ``visit_id`` to the open visits (the others stay until cleared)."""
        if not _VISIT_ID.fullmatch(visit_id):
            raise OpenVisitError(f"visit id {visit_id!r} is not a plain id; not recorded")
        when = (started or dt.datetime.now().astimezone()).isoformat(timespec="seconds")
        try:
            visits = [v for v in self.load_all() if v.visit_id != visit_id]
        except OpenVisitError:
            visits = []  # a damaged record names no visit we could close
        visits = (visits + [OpenVisit(visit_id, when)])[-MAX_OPEN:]
        self._write(visits)

    def clear(self, visit_id: str | None = None) -> bool:
        """Durably remove ``visit_id`` from the record (every visit, when None). True if removed."""
        if visit_id is not None:
            try:
                visits = self.load_all()
            except OpenVisitError:
                return False  # a damaged record names no visit we can close: leave it for load()
            rest = [v for v in visits if v.visit_id != visit_id]
            if len(rest) == len(visits):
                return False
            if rest:
                self._write(rest)
                return True
        try:
            self.path.unlink()
            fsync_dir(self.dir)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise OpenVisitError(f"could not remove the open-visit record {self.path} ({e.strerror or e})") from None
        return True

    def _write(self, visits: list[OpenVisit]) -> None:
        try:
            # one visit (nearly always): the one-visit form older releases read too
            text = encode(visits[0]) if len(visits) == 1 else encode_all(visits)
            atomic_write(self.path, text.encode("utf-8"))
        except OSError as e:
            raise OpenVisitError(f"could not record the open visit in {self.dir} ({e.strerror or e})") from None
