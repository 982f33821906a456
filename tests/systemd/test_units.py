"""The systemd integration: unit files that systemd accepts, and our sd_notify client.

`systemd-analyze verify` exits 0 on parse errors and only prints a warning, so any
output at all counts as a failure here. It also exits 1 when ExecStart's binary does
not exist, so the unit is copied with ExecStart pointing at this test's interpreter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mynad.sdnotify import Heartbeat, Notifier, watchdog_loop

REPO = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = REPO / "systemd"
UNIT = SYSTEMD_DIR / "mynad.service"
SYSUSERS = SYSTEMD_DIR / "myna-reader.sysusers.conf"
TMPFILES = SYSTEMD_DIR / "myna-reader.tmpfiles.conf"

# "OK" in systemd-analyze's scale is below 4.0; 1.8 when this was written. A regression
# such as dropping MemoryDenyWriteExecute or the syscall filter pushes it over 2.5.
MAX_EXPOSURE = 2.5

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze not installed (Debian: apt-get install -y systemd)",
)


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def _unit_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart's binary replaced by one that exists here; all else kept."""
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    rewritten, n = re.subn(r"(?m)^ExecStart=\S+", f"ExecStart={sys.executable}", text)
    assert n == 1, "mynad.service must have exactly one ExecStart="
    path = tmp_path / "mynad.service"
    path.write_text(rewritten, encoding="utf-8")
    return path


def _settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


# --------------------------------------------------------------------------- unit files


def test_unit_has_the_contract_settings():
    s = _settings(UNIT.read_text(encoding="utf-8"))
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["30s"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecStart"] == ["/opt/myna-reader/current/venv/bin/mynad --config /etc/myna-reader/mynad.toml"]
    assert s["ExecStartPre"] == ["-+/opt/myna-reader/bin/myna-bootcheck"]  # trial starts, rollback (docs/update.md)
    assert s["OnFailure"] == ["myna-rollback.service"]
    assert s["User"] == ["myna"] and s["Group"] == ["myna"]
    assert s["SupplementaryGroups"] == ["gpio spi video dialout audio myna-tech"]
    assert s["LimitCORE"] == ["0"]  # no core dump of a process that held a PIN
    # the keypad thread's nice -10 (myna_drivers.priority) needs exactly this one capability
    assert s["CapabilityBoundingSet"] == ["CAP_SYS_NICE"] and s["AmbientCapabilities"] == ["CAP_SYS_NICE"]
    assert s["StateDirectory"] == ["myna-reader"]
    assert s["RuntimeDirectory"] == ["myna-reader"]
    assert "pcscd.socket" in s["Wants"][0]
    assert s["DevicePolicy"] == ["closed"]


@needs_analyze
def test_systemd_analyze_verify_is_silent(tmp_path):
    unit = _unit_copy(tmp_path)
    assert "User=myna" in unit.read_text(encoding="utf-8")
    r = _run(SYSTEMD_ANALYZE, "verify", str(unit))
    print(r.stdout, r.stderr)
    assert r.returncode == 0, f"systemd-analyze verify failed (rc={r.returncode}):\n{r.stderr}{r.stdout}"
    assert r.stderr.strip() == "", f"systemd-analyze verify warned:\n{r.stderr}"
    assert r.stdout.strip() == "", f"systemd-analyze verify printed:\n{r.stdout}"


@needs_analyze
def test_verify_check_catches_a_typo(tmp_path):
    """Control: the silent-verify check above really sees parse errors (which exit 0)."""
    broken = UNIT.read_text(encoding="utf-8").replace("Type=notify", "Type=notfy")
    r = _run(SYSTEMD_ANALYZE, "verify", str(_unit_copy(tmp_path, broken)))
    assert "notfy" in r.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path):
    unit = _unit_copy(tmp_path)
    r = _run(SYSTEMD_ANALYZE, "security", "--offline=yes", "--no-pager", str(unit))
    assert r.returncode == 0, f"systemd-analyze security failed (rc={r.returncode}):\n{r.stderr}"
    assert r.stderr.strip() == "", r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", r.stdout)
    assert m, f"no exposure line in:\n{r.stdout}"
    score, level = float(m.group(1)), m.group(2)
    print(f"\nsystemd-analyze security: mynad.service exposure {score} {level} (threshold {MAX_EXPOSURE})")
    assert level == "OK"
    assert score <= MAX_EXPOSURE


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
                    reason="systemd-sysusers / systemd-tmpfiles not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="tmpfiles must chown to root:myna, which needs root")
def test_sysusers_and_tmpfiles_in_a_scratch_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group"):  # a minimal base, without the device groups
        (root / "etc" / name).write_text(
            "root:x:0:0:root:/root:/bin/sh\n" if name == "passwd" else "root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (root / "usr/lib/sysusers.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    shutil.copy(SYSUSERS, root / "usr/lib/sysusers.d/myna-reader.conf")
    shutil.copy(TMPFILES, root / "usr/lib/tmpfiles.d/myna-reader.conf")

    r = _run("systemd-sysusers", f"--root={root}", "myna-reader.conf")
    assert r.returncode == 0, r.stderr
    noise = [ln for ln in r.stderr.splitlines() if ln and not ln.startswith("Creating ")]
    assert noise == [], r.stderr
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    user = re.search(r"(?m)^myna:x:(\d+):(\d+):[^:]*:/var/lib/myna-reader:/usr/sbin/nologin$", passwd)
    assert user, passwd
    for g in ("gpio", "spi", "video", "dialout"):
        assert re.search(rf"(?m)^{g}:x:\d+:(.*,)?myna(,.*)?$", group), f"myna not in {g}:\n{group}"

    (root / "etc/myna-reader").mkdir()
    (root / "etc/myna-reader/mynad.toml").write_text("[reader]\n")
    r = _run("systemd-tmpfiles", f"--root={root}", "--create", "myna-reader.conf")
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    gid = int(re.search(r"(?m)^myna:x:(\d+):", group).group(1))
    d, f = (root / "etc/myna-reader").stat(), (root / "etc/myna-reader/mynad.toml").stat()
    assert (d.st_mode & 0o7777, d.st_uid, d.st_gid) == (0o750, 0, gid)
    assert (f.st_mode & 0o7777, f.st_uid, f.st_gid) == (0o640, 0, gid)


# --------------------------------------------------------------------------- sd_notify


class Receiver:
    """Plays systemd's side: an AF_UNIX datagram socket, bound to a path or abstract name."""

    def __init__(self, tmp_path: Path, abstract: bool) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"myna-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = tmp_path / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.sock.settimeout(2.0)

    def recv(self) -> str:
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2.0)
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def receiver(request, tmp_path):
    r = Receiver(tmp_path, abstract=request.param == "abstract")
    yield r
    r.close()


def test_messages_arrive(receiver, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", receiver.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    n = Notifier.from_env()
    assert n.enabled and n.watchdog_interval() == 15.0
    assert n.ready("reader idle")
    assert receiver.recv() == "READY=1\nSTATUS=reader idle"
    assert n.status("card inserted")
    assert receiver.recv() == "STATUS=card inserted"
    assert n.watchdog()
    assert receiver.recv() == "WATCHDOG=1"
    assert n.extend_timeout(2.5)
    assert receiver.recv() == "EXTEND_TIMEOUT_USEC=2500000"
    assert n.stopping()
    assert receiver.recv() == "STOPPING=1"
    n.close()


def test_status_cannot_forge_fields(receiver):
    n = Notifier(receiver.env_value)
    n.status("bad\nREADY=1")
    assert receiver.recv() == "STATUS=bad READY=1"


def test_from_env_unset_environment(receiver):
    env = {"NOTIFY_SOCKET": receiver.env_value, "WATCHDOG_USEC": "1000000", "OTHER": "x"}
    n = Notifier.from_env(env, unset_environment=True)
    assert env == {"OTHER": "x"}
    assert n.enabled and n.watchdog_interval() == 0.5


def test_noop_outside_systemd():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval() is None
    assert n.ready("x") is False and n.status("x") is False
    assert n.watchdog() is False and n.stopping() is False
    assert asyncio.run(asyncio.wait_for(watchdog_loop(n, lambda: True), 1)) is None  # returns at once


@pytest.mark.parametrize("env", [
    {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},  # meant for another process
    {"WATCHDOG_USEC": "0"},
    {"WATCHDOG_USEC": "soon"},
    {},
])
def test_no_watchdog_interval(env):
    n = Notifier.from_env({"NOTIFY_SOCKET": "/run/whatever", **env})
    assert n.watchdog_interval() is None


def test_unsupported_socket_kind_disables():
    assert not Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def _finishes(work, what: str, timeout: float = 30.0):
    """Run ``work()`` in a thread and return its result; fail if it hangs (a liveness guard, not a
    speed claim: a blocking send would never return, a slow machine only takes longer)."""
    import threading

    out: list = []
    t = threading.Thread(target=lambda: out.append(work()), daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{what} blocked"
    assert out, f"{what} raised (see the thread's traceback above)"
    return out[0]


def test_send_failure_never_raises_never_blocks_logs_once(tmp_path, caplog):
    n = Notifier(str(tmp_path / "nobody-listens.sock"))
    caplog.set_level(logging.DEBUG, logger="mynad.sdnotify")
    results = _finishes(lambda: [n.watchdog() for _ in range(50)], "a send to a missing socket")
    assert results == [False] * 50
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_full_queue_does_not_block(tmp_path):
    """A manager that does not read: sends fail with EAGAIN instead of blocking the loop."""
    r = Receiver(tmp_path, abstract=True)
    try:
        n = Notifier(r.env_value)
        sent = _finishes(lambda: [n.status("x" * 1000) for _ in range(5000)], "a send to a full queue")
        assert sent[0] is True and sent[-1] is False  # the queue filled up, nothing hung
    finally:
        r.close()


def test_watchdog_loop_pings_only_while_healthy(receiver):
    n = Notifier(receiver.env_value, watchdog_usec=100_000)  # ping every 0.05 s
    assert n.watchdog_interval() == 0.05
    state = {"healthy": True}

    async def scenario():
        task = asyncio.create_task(watchdog_loop(n, lambda: state["healthy"]))
        await asyncio.sleep(0.3)
        healthy_pings = receiver.drain()
        state["healthy"] = False
        await asyncio.sleep(0.1)  # a ping already on its way may still land
        receiver.drain()
        await asyncio.sleep(0.4)
        silent = receiver.drain()
        state["healthy"] = True
        await asyncio.sleep(0.2)
        resumed = receiver.drain()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return healthy_pings, silent, resumed

    healthy_pings, silent, resumed = asyncio.run(scenario())
    assert len(healthy_pings) >= 3 and set(healthy_pings) == {"WATCHDOG=1"}
    assert silent == [], "watchdog_loop pinged while health() was False"
    assert len(resumed) >= 1


def test_watchdog_loop_treats_a_raising_check_as_unhealthy(receiver, caplog):
    n = Notifier(receiver.env_value, watchdog_usec=100_000)

    def health() -> bool:
        raise RuntimeError("card monitor gone")

    async def scenario():
        task = asyncio.create_task(watchdog_loop(n, health))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="mynad.sdnotify"):
        asyncio.run(scenario())
    assert receiver.drain() == []
    assert len([r for r in caplog.records if "health check raised" in r.getMessage()]) == 1


def test_blocked_event_loop_stops_pings(receiver):
    """The ping comes from the loop itself, so a hung loop (the real failure) goes silent."""
    n = Notifier(receiver.env_value, watchdog_usec=100_000)

    async def scenario():
        task = asyncio.create_task(watchdog_loop(n, lambda: True))
        await asyncio.sleep(0.12)
        receiver.drain()
        time.sleep(0.4)  # a blocking call on the loop
        silent = receiver.drain()
        task.cancel()
        return silent

    assert asyncio.run(scenario()) == []


def test_heartbeat():
    now = [100.0]
    hb = Heartbeat(clock=lambda: now[0])
    assert hb.fresh(5)
    now[0] += 6
    assert not hb.fresh(5) and hb.age() == 6
    hb.beat()
    assert hb.fresh(5)
