"""`mynactl staff-password set|clear|status`: from a script (--stdin) and from a terminal
(asked twice with echo off; run on a real pty that is the command's controlling terminal)."""

from __future__ import annotations

import os
import pty
import select
import stat
import subprocess
import sys
import time

import pytest

from mynad.staffauth import LockoutPolicy, StaffGate


@pytest.fixture
def cfg(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    path = tmp_path / "mynad.toml"
    path.write_text(f'[reader]\nstate_dir = "{state}"\n[flow]\nstaff_password_length = 6\n'
                    '[staff]\nmax_wrong = 3\n')
    return path, state


def mynactl(cfg_path, *args, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mynad.ctl", "--config", str(cfg_path), "staff-password", *args],
                          input=stdin, capture_output=True, text=True, timeout=120, stdin=None if stdin is not None
                          else subprocess.DEVNULL)


def test_set_from_stdin_then_check_clear(cfg):
    path, state = cfg
    r = mynactl(path, "set", "--stdin", stdin="246810\n")
    assert r.returncode == 0, r.stderr
    assert "246810" not in r.stdout + r.stderr
    record = state / "staff-password"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and record.read_text().startswith("$scrypt$ln=15,r=8,p=1$")
    gate = StaffGate(state, LockoutPolicy(), length=6)
    assert gate.check(bytearray(b"246810")).ok
    assert mynactl(path, "status").stdout.strip() == "staff password: set"
    assert mynactl(path, "clear").returncode == 0
    assert not record.exists()
    assert mynactl(path, "status").stdout.strip() == "staff password: not set"


@pytest.mark.parametrize("entry", ["12345", "1234567", "12a456", ""])
def test_set_refuses_anything_but_the_keypad_length_in_digits(cfg, entry):
    path, state = cfg
    r = mynactl(path, "set", "--stdin", stdin=entry + "\n")
    assert r.returncode != 0
    assert "exactly 6 digits" in r.stderr
    assert not (state / "staff-password").exists()


def test_status_shows_a_lockout(cfg):
    path, state = cfg
    mynactl(path, "set", "--stdin", stdin="246810\n")
    gate = StaffGate(state, LockoutPolicy(max_wrong=3), length=6)
    for _ in range(3):
        gate.check(bytearray(b"000000"))
    assert "locked for" in mynactl(path, "status").stdout


def _run_on_pty(argv: list[str], answers: list[bytes]) -> tuple[int, bytes]:
    """Run argv with a pty as its controlling terminal; answer each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is stdin/stdout/stderr and /dev/tty
        os.execv(argv[0], argv)
    out, pending = b"", list(answers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        out += chunk
        if pending and out.rstrip().endswith(b":"):
            os.write(fd, pending.pop(0))
            out += b"|"  # mark the answer, so the next prompt is seen as new
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_set_on_a_terminal_asks_twice_without_echo(cfg):
    path, state = cfg
    code, out = _run_on_pty([sys.executable, "-m", "mynad.ctl", "--config", str(path), "staff-password", "set"],
                            [b"135790\r", b"135790\r"])
    assert code == 0, out
    assert b"new staff password (6 digits):" in out and b"the same again:" in out
    assert b"135790" not in out  # never echoed
    assert StaffGate(state, LockoutPolicy(), length=6).check(bytearray(b"135790")).ok


def test_two_different_entries_change_nothing(cfg):
    path, state = cfg
    code, out = _run_on_pty([sys.executable, "-m", "mynad.ctl", "--config", str(path), "staff-password", "set"],
                            [b"135790\r", b"135791\r"])
    assert code == 1 and b"the two entries differ" in out
    assert not (state / "staff-password").exists()
