"""The console menu as a pure state machine: an event in, effects out, a screen to draw.

``Console.handle(event) -> list[Effect]`` and ``Console.screen() -> list[str]`` (exactly
``ROWS`` lines, none wider than ``COLS`` terminal columns). The shell
(:mod:`mynad.console.terminal`) draws the screen after every event and carries out the
effects: ``Run`` (something slow or with side effects, answered by ``Done``), the self-test
conversation (``StartTest``/``AnswerTest``/``AbortTest``, answered by ``TestLine`` and
``TestEnded``) and ``Quit``. Keeping this free of I/O is what lets the tests walk every menu,
check every screen fits 80x24, and check that a factory reset asks twice when results are
still owed to the host, without a terminal or a daemon.

The state is the whole console: a reconnecting technician presses Ctrl-L (or ``r`` on a
menu) and gets the same screen back.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from mynad.core import codes
from mynad.selftest import TESTS

COLS, ROWS = 80, 24
BODY = ROWS - 4  # title, blank, ..., message, key help
PRIORITIES = ("err", "warning", "notice", "info", "debug")
INTERACTIVE = ("card-reader", "keypad", "display", "buzzer-led")  # need hands or eyes
LOOK_ONLY = tuple(n for n in TESTS if n not in INTERACTIVE)


# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class Key:
    name: str  # mynad.console.keys names: "1", "a", "enter", "esc", "up", "redraw", ...


@dataclass(frozen=True)
class Done:
    """A ``Run`` finished: ``ok``, lines of text to show, and data for the next step."""

    action: str
    ok: bool
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestLine:
    """A line of the running self-test's conversation (``{"progress"|"ask": ...}``)."""

    msg: dict[str, Any]


@dataclass(frozen=True)
class TestEnded:
    """The daemon's final answer: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": ...}``."""

    reply: dict[str, Any]


Event = Key | Done | TestLine | TestEnded


# ---------------------------------------------------------------- effects out


@dataclass(frozen=True)
class Run:
    action: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StartTest:
    name: str


@dataclass(frozen=True)
class AnswerTest:
    yes: bool


@dataclass(frozen=True)
class AbortTest:
    pass


@dataclass(frozen=True)
class Quit:
    pass


Effect = Run | StartTest | AnswerTest | AbortTest | Quit

MAIN_MENU: tuple[tuple[str, str], ...] = (
    ("1", "Status"),
    ("2", "Self-tests"),
    ("3", "Logs (journal of mynad)"),
    ("4", "Support bundle (send with ZMODEM)"),
    ("5", "Update (receive a bundle with ZMODEM, then install)"),
    ("6", "Roll back to the previous version"),
    ("7", "Installed versions"),
    ("8", "Check the configuration"),
    ("9", "Set the staff password (目視確認)"),
    ("0", "Factory reset"),
    ("q", "Quit (log out)"),
)
RUN_FOR_KEY = {"1": "status", "3": "logs", "7": "versions", "8": "check-config"}
TITLES = {"status": "Status", "logs": "Logs", "versions": "Installed versions", "check-config": "Configuration check",
          "support-bundle": "Support bundle", "update": "Update", "rollback": "Roll back",
          "staff-password": "Staff password", "factory-reset": "Factory reset", "receive-update": "Update"}


@dataclass
class Confirm:
    """A yes/no question; ``yes`` is the effect a ``y`` runs, ``then`` a second question first."""

    title: str
    lines: list[str]
    yes: Run
    no: Run | None = None
    then: "Confirm | None" = None


class Console:
    def __init__(self, version: str = "", reader: str = "") -> None:
        self.version = version
        self.reader = reader
        self.view = "main"
        self.title = "Main menu"
        self.text: list[str] = []
        self.scroll = 0
        self.message = ""
        self.priority = "info"
        self.results: dict[str, dict[str, Any]] = {}  # self-test name -> result (the daemon's words)
        self.test: str | None = None
        self.test_lines: list[str] = []
        self.ask: str | None = None
        self.queue: list[str] = []
        self.confirm: Confirm | None = None
        self.busy: str | None = None
        self.back_to = "main"

    # ------------------------------------------------------------ events

    def handle(self, event: Event) -> list[Effect]:
        if isinstance(event, Key):
            return self._key(event.name)
        if isinstance(event, Done):
            return self._done(event)
        if isinstance(event, TestLine):
            return self._test_line(event.msg)
        if isinstance(event, TestEnded):
            return self._test_ended(event.reply)
        return []

    def start_busy(self, action: str) -> None:
        """The shell is about to run ``action`` (it may take a while): say so on the screen."""
        self.busy = BUSY_TEXT.get(action, f"{TITLES.get(action, action)}: working...")

    def _key(self, k: str) -> list[Effect]:
        if k in ("redraw",):
            return []  # the shell redraws after every event anyway
        if k == "eof":
            return [AbortTest(), Quit()] if self.view == "test" else [Quit()]
        if self.view == "test":
            return self._test_key(k)
        if self.view == "confirm":
            return self._confirm_key(k)
        if self.view == "text":
            return self._text_key(k)
        if self.view == "tests":
            return self._tests_key(k)
        return self._main_key(k)

    def _main_key(self, k: str) -> list[Effect]:
        self.message = ""
        if k == "q":
            return [Quit()]
        if k in RUN_FOR_KEY:
            action = RUN_FOR_KEY[k]
            return [Run(action, {"priority": self.priority} if action == "logs" else {})]
        if k == "2":
            self.view, self.title = "tests", "Self-tests"
            return []
        if k == "4":
            return [Run("support-bundle")]
        if k == "5":
            return [Run("receive-update")]
        if k == "6":
            self._ask_confirm(Confirm("Roll back", ["Go back to the previous installed version?",
                                                     "The reader restarts; site data (outbox, calibration, staff",
                                                     "password, config) is kept."], Run("rollback")))
            return []
        if k == "9":
            return [Run("staff-password")]
        if k == "0":
            return [Run("factory-reset-plan")]
        if k in ("r", "enter"):
            return []
        self.message = f"no menu item {k!r}: press one of the keys shown" if len(k) == 1 else ""
        return []

    def _text_key(self, k: str) -> list[Effect]:
        page = BODY - 1
        top = max(0, len(self.text) - page)
        if k in ("down", "j"):
            self.scroll = min(top, self.scroll + 1)
        elif k in ("up", "k"):
            self.scroll = max(0, self.scroll - 1)
        elif k in ("pgdn", " ", "right"):
            self.scroll = min(top, self.scroll + page)
        elif k in ("pgup", "left"):
            self.scroll = max(0, self.scroll - page)
        elif k == "home":
            self.scroll = 0
        elif k == "end":
            self.scroll = top
        elif k == "p" and self.title.startswith("Logs"):
            self.priority = PRIORITIES[(PRIORITIES.index(self.priority) + 1) % len(PRIORITIES)]
            return [Run("logs", {"priority": self.priority})]
        elif k == "u" and self.title.startswith(("Logs", "Status")):
            action = "logs" if self.title.startswith("Logs") else "status"
            return [Run(action, {"priority": self.priority} if action == "logs" else {})]
        elif k in ("b", "esc", "q", "enter"):
            self.view, self.title, self.text, self.scroll = self.back_to, _menu_title(self.back_to), [], 0
            self.back_to = "main"
        return []

    def _tests_key(self, k: str) -> list[Effect]:
        self.message = ""
        names = list(TESTS)
        if k.isdigit() and 1 <= int(k) <= len(names):
            return self._start(names[int(k) - 1])
        if k == "a":
            self.queue = list(LOOK_ONLY[1:])
            return self._start(LOOK_ONLY[0])
        if k in ("b", "esc", "q"):
            self.view, self.title = "main", "Main menu"
        return []

    def _start(self, name: str) -> list[Effect]:
        self.view, self.title = "test", f"Self-test: {name}"
        self.test, self.test_lines, self.ask = name, [TESTS[name]], None
        return [StartTest(name)]

    def _test_key(self, k: str) -> list[Effect]:
        if self.ask is not None and k in ("y", "n"):
            self.test_lines.append(f"  answer: {'yes' if k == 'y' else 'no'}")
            self.ask = None
            return [AnswerTest(k == "y")]
        if k in ("esc", "x", "interrupt"):
            self.queue = []
            self.test_lines.append("  aborting...")
            return [AbortTest()]
        return []

    def _test_line(self, msg: dict[str, Any]) -> list[Effect]:
        if "ask" in msg:
            self.ask = str(msg["ask"])
            self.test_lines.append(f"? {self.ask}")
        elif "progress" in msg:
            self.test_lines.append(f"  {msg['progress']}")
        return []

    def _test_ended(self, reply: dict[str, Any]) -> list[Effect]:
        name = self.test or "?"
        result = reply.get("result") if reply.get("ok") else None
        if result is None:
            result = {"name": name, "ok": False, "reason": str(reply.get("error") or "no answer from the daemon")}
        self.results[name] = result
        self.test, self.ask = None, None
        verdict = "PASS" if result.get("ok") else "FAIL"
        self.message = f"{name}: {verdict}: {result.get('reason', '')}"
        if self.queue:
            return self._start(self.queue.pop(0))
        self.view, self.title = "tests", "Self-tests"
        return []

    def _ask_confirm(self, c: Confirm) -> None:
        self.confirm = c
        self.view, self.title = "confirm", c.title

    def _confirm_key(self, k: str) -> list[Effect]:
        c = self.confirm
        assert c is not None
        if k == "y":
            if c.then is not None:
                self._ask_confirm(c.then)
                return []
            self.confirm, self.view, self.title = None, "main", "Main menu"
            return [c.yes]
        if k in ("n", "esc", "b", "q"):
            self.confirm, self.view, self.title = None, "main", "Main menu"
            self.message = f"{c.title}: nothing was done"
            return [c.no] if c.no is not None else []
        return []

    def _done(self, d: Done) -> list[Effect]:
        self.busy = None
        if d.action == "receive-update" and d.ok:
            f = d.data
            self._ask_confirm(Confirm("Update", [
                f"Received {f.get('name')} ({f.get('size', 0):,} bytes)",
                f"sha256 {f.get('sha256', '')}",
                "",
                "Install it now? Its signature and every file are checked first;",
                "the reader restarts into the new version and goes back by itself",
                "if that version does not come up."],
                Run("update", {"file": f.get("path")}), no=Run("discard-update", {"file": f.get("path")})))
            return []
        if d.action == "factory-reset-plan" and d.ok:
            owed = int(d.data.get("owed", 0))
            lines = ["A factory reset deletes:"] + [f"  - {x}" for x in d.data.get("deletes", [])] + \
                    ["Kept: the installed software and the configuration file.", "", "Delete all of this?"]
            second = None
            if owed:
                second = Confirm("Factory reset: results owed", [
                    f"{owed} result(s) have NOT reached the clinic host yet.",
                    "They will be lost for good: the host never learns of these visits.",
                    "Better: fix the host link first (Status, Self-tests: host link) and",
                    "wait until nothing is owed.", "", "Delete them anyway?"],
                    Run("factory-reset", {"discard_owed": True}))
            self._ask_confirm(Confirm("Factory reset", lines, Run("factory-reset", {"discard_owed": False}),
                                      then=second))
            return []
        if d.action in ("discard-update",):
            self.view, self.title, self.message = "main", "Main menu", d.text.splitlines()[0] if d.text else ""
            return []
        if d.action == "status" and d.data.get("results"):
            self.results.update(d.data["results"])
        title = TITLES.get(d.action, d.action)
        if d.action == "logs":
            title = f"Logs (priority {self.priority} and above)"
        self.back_to = self.view if self.view in ("main", "tests") else "main"
        self.view, self.title, self.scroll = "text", title, 0
        self.text = d.text.splitlines() or ["(nothing)"]
        if d.action == "logs":
            self.scroll = max(0, len(self.text) - (BODY - 1))  # the newest lines first in view
        self.message = "" if d.ok else f"{title}: FAILED (see above)"
        return []

    # ------------------------------------------------------------ screen

    def screen(self) -> list[str]:
        head = f" myna-reader {self.version}  {self.reader}".rstrip()
        title = f"{self.title} "
        top = fit(head + " " * max(1, COLS - width(head) - width(title)) + title)
        body, help_ = self._body()
        if self.busy:
            body = self.busy.splitlines() + ["", "(please wait)"]
            help_ = ""
        body = [fit(x) for x in body[:BODY]]
        body += [""] * (BODY - len(body))
        return [top, ""] + body + [fit(self.message), fit(help_)]

    def _body(self) -> tuple[list[str], str]:
        if self.view == "main":
            return [f"  {k}  {label}" for k, label in MAIN_MENU], "keys: 0-9 choose, q quit, Ctrl-L redraw"
        if self.view == "tests":
            lines = []
            for i, (name, what) in enumerate(TESTS.items(), 1):
                r = self.results.get(name)
                mark = "  -- " if r is None else (" PASS" if r.get("ok") else " FAIL")
                lines.append(f"  {i}  {mark}  {what}")
                if r is not None:
                    lines.append(f"           {r.get('reason', '')}")
            lines += ["", "  a  run the tests that need no hands (" + ", ".join(LOOK_ONLY) + ")"]
            return lines, "keys: 1-7 run a test, a run all, b back, Ctrl-L redraw"
        if self.view == "test":
            lines = self.test_lines[-(BODY - 1):]
            if self.ask is not None:
                return lines, "keys: y yes, n no, Esc abort"
            return lines, "keys: Esc abort (the test runs in the reader)"
        if self.view == "confirm":
            assert self.confirm is not None
            return list(self.confirm.lines), "keys: y yes, n no"
        page = BODY - 1
        shown = self.text[self.scroll:self.scroll + page]
        more = f"lines {self.scroll + 1}-{self.scroll + len(shown)} of {len(self.text)}"
        extra = ", p priority, u update" if self.title.startswith("Logs") else (
            ", u update" if self.title.startswith("Status") else "")
        return shown + [f"  ({more})"], f"keys: arrows/PgUp/PgDn scroll{extra}, b back"


BUSY_TEXT = {
    "support-bundle": "Making the support bundle (versions, masked config, journal, counts)...",
    "receive-update": "Waiting for the update bundle with ZMODEM (rz).\n"
                      "Send the .tar file from your terminal now: picocom C-a C-s, tio Ctrl-t y.",
    "update": "Installing the update (signature and files are checked first)...",
    "rollback": "Rolling back...",
    "factory-reset": "Factory reset in progress...",
}


def _menu_title(view: str) -> str:
    return {"main": "Main menu", "tests": "Self-tests"}.get(view, "Main menu")


def width(text: str) -> int:
    """Terminal columns of ``text`` (CJK wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def fit(text: str, cols: int = COLS) -> str:
    """``text`` on one line cut to ``cols`` columns (tabs and control characters made safe)."""
    text = "".join(" " if c == "\t" else ("?" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text)
    out, used = [], 0
    for c in text:
        w = 2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
        if used + w > cols:
            break
        out.append(c)
        used += w
    return "".join(out)


def describe_code(code: str | None) -> str:
    """``"019 — meaning (what to do)"`` from mynad.core.codes, for the status page."""
    if not code:
        return "none"
    entry = codes.by_code(code)
    if entry is None:
        return f"{code} (not in this version's code table)"
    return f"{code}: {entry.meaning_en}. {entry.action_en}"
