"""The soak's end-of-run audit: pure checks over what the run recorded.

Inputs are plain data: the timeline records (``timeline.jsonl``: daemon log lines,
screens, host traffic, the soak's own visit and fault entries, the supervisor's
restarts), the bytes of the files a secret must never reach, and the secrets the
soak typed. Nothing here talks to the daemon, so a kept run folder can be audited
again (``mynasim soak --audit-only DIR``).

What the reader *decided* is read from the reader's side only: a ``to host:
visit.result`` log line, or a ``done`` screen (the patient was told 「確認が完了しました」),
attributed to the visit whose id the daemon's log named last. What the host *got*
is read from the virtual host's records. A result is lost when

* the done screen was shown and no ``visit.result`` reached the host (the patient was
  told it was done: nothing may undo that), or
* the daemon decided it (log line) and the host got neither the result nor a
  ``visit.aborted`` for the visit. A crash between the decision and the result being
  durable, before the patient saw 「完了」, may end the visit with an abort after the
  restart instead: counted as *withdrawn*, not lost.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

VISIT_TAG = re.compile(r"\bvisit ([0-9a-f]{6,32}): ")
PLACED = re.compile(r"\bvisit ([0-9a-f]{6,32}): card placed")
RESULT_DECIDED = "to host: visit.result"
DONE_SCREEN = "the done screen"
BINARY_FIELDS = ("cert_der", "signature", "nonce", "challenge", "mac", "hmac")  # base64 of binary data


@dataclass(frozen=True)
class Leak:
    where: str       # file name or "host messages"
    secret: str      # "PIN" or "照合番号B"
    form: str        # token, spaced digits, ASCII hex
    owner: str       # the card profile whose secret it is
    offset: int

    def describe(self) -> str:
        return f"{self.secret} of card {self.owner} in {self.where} at byte {self.offset} ({self.form})"


@dataclass
class AuditReport:
    owed: dict[str, str] = field(default_factory=dict)            # visit id -> how we know ("done screen", "log")
    delivered: dict[str, list[str]] = field(default_factory=dict)  # visit id -> message ids of its visit.result
    lost: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)             # decided, never shown done, aborted at the host
    duplicated: list[tuple[str, str]] = field(default_factory=list)  # (visit id, why)
    conflicting: list[str] = field(default_factory=list)             # a result and an abort for one visit
    unowed: list[str] = field(default_factory=list)                  # results the reader's side never decided
    open_visits: list[str] = field(default_factory=list)
    stuck: list[tuple[int, str]] = field(default_factory=list)       # (soak visit, last screen)
    tracebacks: list[tuple[str, str]] = field(default_factory=list)  # (visit id or "-", exception line)
    leaks: list[Leak] = field(default_factory=list)
    visit_index: dict[str, int] = field(default_factory=dict)        # daemon visit id -> soak visit number
    visit_faults: dict[int, list[str]] = field(default_factory=dict)  # soak visit -> faults as planned
    started: int = 0
    unexpected_restarts: list[str] = field(default_factory=list)

    def where(self, visit_id: str) -> str:
        """Where a daemon visit id sits in the soak: visit number and its faults."""
        n = self.visit_index.get(visit_id)
        if n is None:
            return f"{visit_id} (between soak visits)"
        faults = self.visit_faults.get(n) or []
        return f"{visit_id} (soak visit {n}{'; ' + ', '.join(faults) if faults else ''})"

    def failures(self) -> list[str]:
        out = [f"lost result: {self.where(v)}, known from {self.owed[v]}" for v in self.lost]
        out += [f"duplicated result: {self.where(v)}: {why}" for v, why in self.duplicated]
        out += [f"result and abort for one visit: {self.where(v)}" for v in self.conflicting]
        out += [f"result the reader never decided: {self.where(v)}" for v in self.unowed]
        out += [f"open at the host (started, never ended): {self.where(v)}" for v in self.open_visits]
        out += [f"stuck: soak visit {n} (the reader stayed on {screen})" for n, screen in self.stuck]
        out += [f"traceback in the daemon log: {self.where(v) if v != '-' else 'no visit'}: {line}"
                for v, line in self.tracebacks]
        out += [f"secret leaked: {leak.describe()}" for leak in self.leaks]
        out += [f"daemon restart no fault explains: {why}" for why in self.unexpected_restarts]
        return out

    def counts(self) -> dict[str, int]:
        return {"owed": len(self.owed), "delivered": sum(1 for v in self.owed if v in self.delivered),
                "lost": len(self.lost), "duplicated": len(self.duplicated), "conflicting": len(self.conflicting),
                "withdrawn": len(self.withdrawn), "unowed": len(self.unowed), "started": self.started, "open": len(self.open_visits),
                "stuck": len(self.stuck), "tracebacks": len(self.tracebacks), "leaks": len(self.leaks),
                "unexpected_restarts": len(self.unexpected_restarts)}


def load_records(path: Path) -> list[dict[str, Any]]:
    """The timeline file as a list of records (a torn last line from a crash is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _host_id(r: dict[str, Any]) -> str | None:
    return r.get("id") if isinstance(r.get("id"), str) else None


class ResultTally:
    """Reads timeline records one by one (as they come, or from the file afterwards) and keeps
    what the audit needs: owed and delivered results, started and ended visits, stuck visits,
    tracebacks, unexplained restarts. ``finish`` fills an :class:`AuditReport`."""

    def __init__(self) -> None:
        self.report = AuditReport()
        self.current: str | None = None      # the visit the daemon's log named last
        self.soak_visit: int | None = None
        self.started: dict[str, None] = {}
        self.ended: dict[str, list[str]] = defaultdict(list)
        self.aborted: set[str] = set()
        self.seen_ids: Counter[str] = Counter()
        self.traceback_at: str | None = None
        self.last_screen: str | None = None

    def feed(self, r: dict[str, Any]) -> None:
        report = self.report
        src, kind = r.get("source"), r.get("kind")
        if src == "soak" and kind == "visit_begin":
            self.soak_visit = int(r.get("index") or 0)
            report.visit_faults[self.soak_visit] = list(r.get("faults") or [])
        elif src == "soak" and kind == "visit_end":
            if r.get("stuck"):
                report.stuck.append((int(r.get("index") or 0), str(r.get("last_screen"))))
            self.soak_visit = None
        elif src == "daemon" and kind == "log":
            self._log_line(str(r.get("line", "")))
        elif src == "display" and kind == "frame":
            self.last_screen = r.get("screen")
            if r.get("screen") == "done" and self.current:
                report.owed[self.current] = DONE_SCREEN
        elif src == "host" and kind == "received":
            self._host(r)
        elif src == "supervisor" and kind in ("exited", "watchdog_timeout") and r.get("why") == "unexpected":
            report.unexpected_restarts.append(f"{kind} at t={r.get('t')}s (pid {r.get('pid')}, code {r.get('code')})")

    def _log_line(self, line: str) -> None:
        report = self.report
        if self.traceback_at is not None and line and not line.startswith((" ", "\t", "Traceback")):
            report.tracebacks.append((self.traceback_at, line.strip()[:200]))
            self.traceback_at = None
        if "Traceback (most recent call last)" in line:
            self.traceback_at = self.current or "-"
            return
        m = VISIT_TAG.search(line)
        if m:
            self.current = m.group(1)
            if self.soak_visit is not None and PLACED.search(line):
                report.visit_index.setdefault(self.current, self.soak_visit)
        if RESULT_DECIDED in line and self.current:
            report.owed.setdefault(self.current, "the daemon log (to host: visit.result)")

    def _host(self, r: dict[str, Any]) -> None:
        t, vid, mid = r.get("type"), r.get("visit_id"), _host_id(r)
        if mid:
            self.seen_ids[mid] += 1
            if self.seen_ids[mid] == 2:
                self.report.duplicated.append((str(vid), f"message {mid} ({t}) delivered twice"))
        if not isinstance(vid, str):
            return
        if t == "visit.started":
            self.started[vid] = None
        elif t == "visit.result":
            self.ended[vid].append(mid or "?")
        elif t == "visit.aborted":
            self.aborted.add(vid)

    def _lost(self, v: str, how: str) -> bool:
        if v in self.ended:
            return False
        return how == DONE_SCREEN or v not in self.aborted

    def missing(self) -> tuple[int, int]:
        """(results owed and not at the host, visits open at the host) right now."""
        lost = sum(1 for v, how in self.report.owed.items() if self._lost(v, how))
        open_ = sum(1 for v in self.started if v not in self.ended and v not in self.aborted)
        return lost, open_

    def finish(self) -> AuditReport:
        report = self.report
        if self.traceback_at is not None:
            report.tracebacks.append((self.traceback_at, "(log ended inside a traceback)"))
            self.traceback_at = None
        report.started = len(self.started)
        report.delivered = {v: ids for v, ids in self.ended.items()}
        report.lost = [v for v, how in report.owed.items() if self._lost(v, how)]
        report.withdrawn = [v for v in report.owed if v not in self.ended and v not in report.lost]
        for v, ids in self.ended.items():
            if len(set(ids)) > 1:
                report.duplicated.append((v, f"{len(set(ids))} visit.result messages with different ids"))
            if v not in report.owed:
                report.unowed.append(v)
            if v in self.aborted:
                report.conflicting.append(v)
        report.open_visits = [v for v in self.started if v not in self.ended and v not in self.aborted]
        return report


# ---------------------------------------------------------------- secrets

def _patterns(secret: str, kind: str) -> list[tuple[str, re.Pattern[bytes]]]:
    s = secret.encode()
    # bounded by anything but letters, digits, base64 and a decimal point between digits
    # (a timestamp's fraction "448.6792" or a score "0.7986" is not a PIN)
    pats = [("token", re.compile(rb"(?<![0-9A-Za-z+/])(?<![0-9]\.)" + re.escape(s) + rb"(?![0-9A-Za-z+/=])(?!\.[0-9])"))]
    if kind == "PIN":
        # the digits one by one: "8, 6, 9, 7", "['8', '6', '9', '7']", "8 6 9 7"
        # (each separator a group: _in_longer_run looks past the ends with them)
        sep = rb"([^0-9A-Za-z]{1,4})"
        pats.append(("spaced digits", re.compile(rb"(?<![0-9])" + sep.join(re.escape(bytes([c])) for c in s)
                                                 + rb"(?![0-9])")))
    hexed = s.hex()
    pats.append(("ASCII hex", re.compile(rb"(?i)(?<![0-9a-f])" + hexed.encode() + rb"(?![0-9a-f])")))
    pats.append(("ASCII hex", re.compile(rb"(?i)(?<![0-9a-f])" + " ".join(hexed[i:i + 2] for i in range(0, len(hexed), 2)).encode()
                                         + rb"(?![0-9a-f])")))
    return pats


def find_secrets(blobs: dict[str, bytes], secrets: dict[str, dict[str, str]]) -> list[Leak]:
    """``secrets``: {"PIN": {owner: value}, "照合番号B": {owner: value}}; every hit in every blob."""
    leaks = []
    for kind, by_owner in secrets.items():
        for owner, value in by_owner.items():
            if not value:
                continue
            pats = _patterns(value, kind)
            for where, data in blobs.items():
                for form, pat in pats:
                    for m in pat.finditer(data):
                        if form == "spaced digits" and _in_longer_run(data, m):
                            continue
                        leaks.append(Leak(where, kind, form, owner, m.start()))
    return leaks


def _in_longer_run(data: bytes, m: re.Match[bytes]) -> bool:
    """Whether spaced digits go on past either end with the same separator: "5, 6, 7, 8, 9"
    holds no more a PIN 6789 than "56789" does as a token. Binary files need this: SQLite's
    WAL index counts in little-endian 16-bit words, "5\\0 6\\0 7\\0 8\\0 9\\0" (the 10,000-visit
    soak of 2026-12-03 reported a PIN 6789 there)."""
    if not m.lastindex:  # a one-digit secret has no separator to follow
        return False
    first, last = m.group(1), m.group(m.lastindex)
    before = data[max(0, m.start() - len(first) - 1):m.start()]
    after = data[m.end():m.end() + len(last) + 1]
    return (len(before) == len(first) + 1 and before[:1].isdigit() and before[1:] == first) or \
        (len(after) == len(last) + 1 and after[:-1] == last and after[-1:].isdigit())


def host_messages_blob(records: Iterable[dict[str, Any]]) -> bytes:
    """Everything the host sent and received, as JSON text, without the base64 of binary fields
    (a certificate or a signature is random-looking text in which any 4 digits can occur)."""
    lines = []
    for r in records:
        if r.get("source") == "host":
            msg = {k: v for k, v in r.items() if k not in BINARY_FIELDS and k not in ("t", "source", "kind")}
            lines.append(json.dumps(msg, ensure_ascii=False))
    return "\n".join(lines).encode("utf-8")


def screens_blob(records: Iterable[dict[str, Any]]) -> bytes:
    """What the reader's screen said (text and parameters), without the PIN pad's shuffled
    layout (all ten digits in some order: the PIN's digits can stand side by side in it)."""
    lines = []
    for r in records:
        if r.get("source") == "display" and r.get("kind") == "frame":
            params = {k: v for k, v in (r.get("params") or {}).items() if k != "layout"}
            lines.append(json.dumps({"text": r.get("text"), "params": params}, ensure_ascii=False))
    return "\n".join(lines).encode("utf-8")


def audit(records: list[dict[str, Any]], blobs: dict[str, bytes], secrets: dict[str, dict[str, str]]) -> AuditReport:
    tally = ResultTally()
    for r in records:
        tally.feed(r)
    report = tally.finish()
    report.leaks = find_secrets({**blobs, "host messages": host_messages_blob(records),
                                 "screens": screens_blob(records)}, secrets)
    return report
