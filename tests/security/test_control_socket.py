"""The control socket decides by the caller's kernel credentials (SO_PEERCRED/SO_PEERGROUPS).

The server runs in this process on a real Unix socket; the callers are the real
``mynactl`` in a subprocess that drops root for ``nobody`` (with chosen groups) before exec.
The groups are ones every Debian system has: ``users`` stands for the technicians' group
(may connect, read status), ``staff`` for the staff group (may arm 目視確認).
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from mynad.control import ControlPolicy, ControlServer, Peer, peer_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")

NOBODY = 65534
TECH = grp.getgrnam("users").gr_gid
STAFF = grp.getgrnam("staff").gr_gid


class Running:
    """A ControlServer on its own loop thread, counting what it was asked to do."""

    def __init__(self, folder: Path) -> None:
        self.visual_checks = 0
        self.armed = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ControlServer(folder / "control.sock", lambda: {"state": "idle", "pending": 0},
                                    self._visual_check, staff_group="staff", socket_group="users")
        self._call(self.server.start())

    def _visual_check(self) -> None:
        self.visual_checks += 1
        self.armed.set()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def control():
    # /tmp/pytest-of-root is 0700: nobody could not even reach the socket there
    folder = Path(tempfile.mkdtemp(prefix="myna-ctl-", dir="/tmp"))
    os.chmod(folder, 0o755)
    (folder / "mynad.toml").write_text(f'[reader]\nruntime_dir = "{folder}"\nstate_dir = "{folder}"\n')
    os.chmod(folder / "mynad.toml", 0o644)
    running = Running(folder)
    running.folder = folder
    yield running
    running.close()
    shutil.rmtree(folder, ignore_errors=True)


def mynactl_as(control: Running, *args: str, uid: int = NOBODY, gid: int = NOBODY,
               groups: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    def drop() -> None:
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)

    return subprocess.run([sys.executable, "-m", "mynad.ctl", "--config", str(control.folder / "mynad.toml"), *args],
                          capture_output=True, text=True, timeout=120, preexec_fn=drop,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": "/", "LC_ALL": "C.UTF-8"})


def test_socket_mode_and_group(control):
    st = control.server.path.stat()
    assert (st.st_mode & 0o777, st.st_gid) == (0o660, TECH)


def test_technician_reads_status_but_cannot_arm(control, caplog):
    caplog.set_level(logging.INFO, logger="mynad.control")
    r = mynactl_as(control, "status", "--json", groups=(TECH,))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"]["state"] == "idle"
    r = mynactl_as(control, "visual-check", groups=(TECH,))
    assert r.returncode == 1
    assert "only root or members of the group staff may run it" in r.stdout
    assert control.visual_checks == 0
    refused = [rec.getMessage() for rec in caplog.records if "refused visual-check" in rec.getMessage()]
    assert refused and f"uid {NOBODY}" in refused[0]
    assert control.server.refused == 1


@pytest.mark.parametrize("gid,groups", [(NOBODY, (TECH, STAFF)), (STAFF, (TECH,))],
                         ids=["staff as supplementary group", "staff as primary group"])
def test_staff_member_arms_the_visual_check(control, gid, groups):
    r = mynactl_as(control, "visual-check", gid=gid, groups=groups)
    assert r.returncode == 0, r.stdout + r.stderr
    assert control.armed.wait(10) and control.visual_checks == 1


def test_outsider_cannot_connect(control):
    r = mynactl_as(control, "status", groups=())
    assert r.returncode != 0
    assert "Permission denied" in r.stderr and "is mynad running?" in r.stderr


def test_root_may_arm(control):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(control.server.path))
        s.sendall(b'{"cmd": "visual-check"}\n')
        reply = json.loads(s.makefile().readline())
    assert reply == {"ok": True}
    assert control.armed.wait(10)


def test_peer_credentials_are_the_kernels():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        peer = peer_of(a)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.geteuid(), os.getegid())
    assert set(os.getgroups()) <= set(peer.groups) | {peer.gid}


def test_policy_is_pure():
    policy = ControlPolicy(staff_gid=50, staff_group="myna-staff", daemon_uid=999)
    outsider = Peer(pid=1, uid=1000, gid=1000, groups=(100,))
    assert policy.refusal("status", outsider) is None
    assert "myna-staff" in policy.refusal("visual-check", outsider)
    assert policy.refusal("visual-check", Peer(1, 1000, 1000, (100, 50))) is None
    assert policy.refusal("visual-check", Peer(1, 0, 0)) is None
    assert policy.refusal("visual-check", Peer(1, 999, 999)) is None  # the daemon's own user
    no_group = ControlPolicy(staff_gid=None, staff_group="myna-staff", daemon_uid=999)
    assert "does not exist" in no_group.refusal("visual-check", Peer(1, 1000, 1000, (50,)))


def test_unknown_and_oversized_requests(control):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(control.server.path))
        s.sendall(b'{"cmd": "' + b"x" * 100 + b'"}\n')
        reply = json.loads(s.makefile().readline())
    assert reply["ok"] is False and "unknown command" in reply["error"] and len(reply["error"]) < 200
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(control.server.path))
        try:
            s.sendall(b"x" * 100_000 + b"\n")
            answer = s.makefile("rb").read()
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        assert answer == b""  # closed without an answer; the server lives on
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(control.server.path))
        s.sendall(b'{"cmd": "status"}\n')
        assert json.loads(s.makefile().readline())["ok"] is True
