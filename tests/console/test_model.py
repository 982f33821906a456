"""The console menu without a terminal: keys in, screens and effects out (pure, fast)."""

from __future__ import annotations

from mynad.console import model as m
from mynad.console.keys import decode
from mynad.selftest import TESTS


def keys(c: m.Console, *names: str) -> list:
    out = []
    for k in names:
        out += c.handle(m.Key(k))
    return out


def fits(c: m.Console) -> None:
    lines = c.screen()
    assert len(lines) == m.ROWS
    assert all(m.width(line) <= m.COLS for line in lines), [line for line in lines if m.width(line) > m.COLS]


def test_decode_vt100_keys():
    assert decode(b"1\r\n\x1b[A\x1bOB\x1b[6~\x1b\x0cQ\x03\x04") == \
        ["1", "enter", "up", "down", "pgdn", "esc", "redraw", "q", "interrupt", "eof"]


def test_every_screen_fits_80x24_and_redraw_keeps_state():
    c = m.Console("0.1.0", "reader-01")
    fits(c)
    assert keys(c, "1") == [m.Run("status")]
    c.handle(m.Done("status", True, "\n".join(f"line {i} " + "長" * 60 for i in range(60))))
    fits(c)
    before = c.screen()
    keys(c, "pgdn", "redraw")
    assert c.screen() != before and c.view == "text"
    again = c.screen()
    keys(c, "redraw")
    assert c.screen() == again  # a reconnecting technician gets the same screen
    keys(c, "b")
    assert c.view == "main"


def test_selftest_conversation_and_results():
    c = m.Console()
    keys(c, "2")
    assert c.view == "tests"
    assert keys(c, "5") == [m.StartTest("display")]
    c.handle(m.TestLine({"ask": "Do you see the pattern?"}))
    assert "y yes" in c.screen()[-1]
    assert keys(c, "y") == [m.AnswerTest(True)]
    c.handle(m.TestEnded({"ok": True, "result": {"name": "display", "ok": True, "reason": "seen"}}))
    assert c.view == "tests" and any("PASS" in line for line in c.screen())
    fits(c)
    # run-all chains the look-only tests one after another; Esc aborts
    effects = keys(c, "a")
    assert effects == [m.StartTest(m.LOOK_ONLY[0])]
    assert keys(c, "esc") == [m.AbortTest()]
    c.handle(m.TestEnded({"ok": True, "result": {"name": m.LOOK_ONLY[0], "ok": False, "reason": "aborted"}}))
    assert c.view == "tests" and c.queue == []
    assert set(m.LOOK_ONLY) | set(m.INTERACTIVE) == set(TESTS)


def test_factory_reset_asks_twice_when_results_are_owed():
    c = m.Console()
    assert keys(c, "0") == [m.Run("factory-reset-plan")]
    c.handle(m.Done("factory-reset-plan", True, "", {"deletes": ["the outbox"], "owed": 3}))
    assert c.view == "confirm" and any("the outbox" in line for line in c.screen())
    assert keys(c, "y") == []  # the first yes only leads to the second question
    assert any("3 result(s)" in line for line in c.screen())
    fits(c)
    assert keys(c, "y") == [m.Run("factory-reset", {"discard_owed": True})]
    # nothing owed: one yes, and owed results are never discarded
    c.handle(m.Done("factory-reset-plan", True, "", {"deletes": ["x"], "owed": 0}))
    assert keys(c, "y") == [m.Run("factory-reset", {"discard_owed": False})]
    c.handle(m.Done("factory-reset-plan", True, "", {"deletes": ["x"], "owed": 0}))
    assert keys(c, "n") == [] and c.view == "main" and "nothing was done" in c.message


def test_update_confirm_or_discard_and_eof_quits():
    c = m.Console()
    assert keys(c, "5") == [m.Run("receive-update")]
    data = {"path": "/var/tmp/x/b.tar", "name": "b.tar", "size": 10, "sha256": "ab" * 32}
    c.handle(m.Done("receive-update", True, "", data))
    fits(c)
    assert keys(c, "n") == [m.Run("discard-update", {"file": "/var/tmp/x/b.tar"})]
    c.handle(m.Done("receive-update", True, "", data))
    assert keys(c, "y") == [m.Run("update", {"file": "/var/tmp/x/b.tar"})]
    assert keys(c, "eof") == [m.Quit()]
    assert keys(c, "q") == [m.Quit()]


def test_logs_priority_cycles_and_status_code_meaning():
    c = m.Console()
    assert keys(c, "3") == [m.Run("logs", {"priority": "info"})]
    c.handle(m.Done("logs", True, "a\nb"))
    assert keys(c, "p") == [m.Run("logs", {"priority": "debug"})]
    assert m.describe_code("001").startswith("001: the card cannot be recognised")
    assert m.describe_code(None) == "none"
