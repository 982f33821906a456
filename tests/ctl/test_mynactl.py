"""mynactl for technicians (issue #12 §3): `status` exit codes, `outbox` counts what is owed,
`--version`; and daemon log lines that carry their severity to journald."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mynad import __version__
from mynad.control import ControlServer
from mynad.hostlink.outbox import Outbox
from mynad.logsetup import JournalFormatter, syslog_priority


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "mynad.toml"
    cfg.write_text(f'[reader]\nstate_dir = "{tmp_path / "state"}"\nruntime_dir = "{tmp_path / "run"}"\n',
                   encoding="utf-8")
    return cfg


def mynactl(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mynad.ctl", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60)


class RunningControl:
    """The daemon's real control server on its own loop thread, answering a given status."""

    def __init__(self, path: Path, status: dict) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(path, lambda: status, lambda: None, staff_group=0, socket_group=None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.mark.parametrize("problems,code", [([], 0), (["the clinic host is not answering (timeout)"], 1)])
def test_status_exit_code_says_whether_the_reader_is_degraded(tmp_path, problems, code):
    cfg = write_config(tmp_path)
    (tmp_path / "run").mkdir()
    ctl = RunningControl(tmp_path / "run" / "control.sock", {"state": "idle", "problems": problems})
    try:
        r = mynactl(cfg, "status")
        assert r.returncode == code, r.stdout + r.stderr
        assert ("DEGRADED" in r.stdout) == bool(problems)
        for p in problems:
            assert p in r.stdout
        r = mynactl(cfg, "status", "--json")
        assert r.returncode == code and json.loads(r.stdout)["status"]["problems"] == problems
    finally:
        ctl.close()


def test_status_without_a_daemon_exits_2_with_a_sentence(tmp_path):
    r = mynactl(write_config(tmp_path), "status")
    assert r.returncode == 2 and "is mynad running?" in r.stderr


def test_outbox_counts_only_what_is_owed(tmp_path):
    """It used to print every SQLite table as 'pending' (the seen-ids table included)."""
    cfg = write_config(tmp_path)
    box = Outbox.in_state_dir(tmp_path / "state")
    for i, t in enumerate(["visit.started", "visit.result", "visit.result"]):
        box.put({"id": f"m{i}", "type": t})
    box.reject("m0", "refused")
    for i in range(5):
        box.remember(f"host{i}")
    box.close()
    r = mynactl(cfg, "outbox", "--json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["pending"] == 2 and counts["pending_by_type"] == {"visit.result": 2}
    assert counts["rejected"] == 1
    r = mynactl(cfg, "outbox")
    assert "owed to the host: 2" in r.stdout and "seen" not in r.stdout


def test_version():
    r = subprocess.run([sys.executable, "-m", "mynad.ctl", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"mynactl {__version__}"


def test_journal_lines_carry_their_priority():
    f = JournalFormatter("%(name)s: %(message)s")
    rec = logging.LogRecord("mynad.host", logging.WARNING, __file__, 1, "line one\nline two", None, None)
    assert f.format(rec) == "<4>mynad.host: line one\n<4>line two"
    assert [syslog_priority(x) for x in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                         logging.CRITICAL)] == [7, 6, 4, 3, 2]


def test_daemon_logs_to_journal_with_prefixes_when_journal_stream_is_its_stderr(tmp_path):
    """What systemd does: JOURNAL_STREAM names the device:inode of the stderr it gave us."""
    out = tmp_path / "stderr"
    code = ("import logging, os, sys\n"
            "st = os.fstat(2); os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}'\n"
            "from mynad.logsetup import setup_logging\n"
            "setup_logging('info'); logging.getLogger('mynad').warning('host down'); "
            "logging.getLogger('mynad').info('idle')\n")
    with open(out, "w") as err:
        subprocess.run([sys.executable, "-c", code], stderr=err, check=True, timeout=60)
    assert out.read_text().splitlines() == ["<4>mynad: host down", "<6>mynad: idle"]
