"""systemd's part for mynad in the simulator: Type=notify, WatchdogSec=, Restart=.

On the device, systemd starts mynad with ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``
(systemd/mynad.service), expects ``READY=1`` and then ``WATCHDOG=1`` at least every
``WatchdogSec``; when the pings stop it sends the watchdog signal (SIGABRT, followed
by SIGCONT so a stopped process receives it), waits ``TimeoutAbortSec`` and sends
SIGKILL; a process that died for any reason but a clean stop is started again after
``RestartSec``. ``Supervisor`` does the same to the daemon of a :class:`SimRig`, so a
SIGSTOPped or hung daemon is really found by its own watchdog pings, not by the rig.

Pings count only from the main process (``NotifyAccess=main``): the socket asks the
kernel for the sender's credentials (SO_PASSCRED), as systemd does.

Everything it sees and does goes onto the rig's timeline (source ``supervisor``) and
into :attr:`Supervisor.events`, so a soak can tell a restart it caused from one it did not.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mynasim.rig import SimRig

_CRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


@dataclass
class SupervisorEvent:
    t: float                 # the rig timeline's clock
    kind: str                # started, ready, exited, watchdog_timeout, killed, restart_failed, stopped
    pid: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    def __init__(self, rig: SimRig, *, watchdog_s: float = 4.0, restart_s: float = 0.5,
                 abort_timeout_s: float = 1.0, start_timeout_s: float = 90.0) -> None:
        """``watchdog_s`` is WatchdogSec (the daemon pings every half of it), ``restart_s``
        RestartSec, ``abort_timeout_s`` TimeoutAbortSec, ``start_timeout_s`` TimeoutStartSec."""
        self.rig = rig
        self.watchdog_s = watchdog_s
        self.restart_s = restart_s
        self.abort_timeout_s = abort_timeout_s
        self.start_timeout_s = start_timeout_s
        self.events: list[SupervisorEvent] = []
        self.socket_path = Path(rig.run_dir) / "notify.sock"
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._running = False            # a daemon process is up and reached the idle screen
        self._pid: int | None = None
        self._ready_at: float | None = None
        self._last_ping: float | None = None
        self._expected: str | None = None  # why the next exit happens ("fault kill9", ...)
        self.restarts = 0

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "Supervisor":
        if self.socket_path.exists():
            self.socket_path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(str(self.socket_path))
        self._sock.settimeout(0.1)
        self.rig.daemon_env.update(NOTIFY_SOCKET=str(self.socket_path),
                                   WATCHDOG_USEC=str(int(self.watchdog_s * 1_000_000)))
        self._start_daemon()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop supervising and stop the daemon cleanly (SIGTERM, as ``systemctl stop``); its exit code."""
        with self._cond:
            self._stopping = True
            self._expected = "stop"
        if self._thread is not None:
            self._thread.join(timeout + 30)
            self._thread = None
        code = self.rig.stop_daemon(signal.SIGTERM, timeout=timeout)
        self._record("stopped", self._pid, code=code)
        with self._cond:
            self._running = False
            self._pid = None
            self._cond.notify_all()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return code

    # ------------------------------------------------------------ for fault injection

    @property
    def pid(self) -> int | None:
        with self._cond:
            return self._pid

    def send_signal(self, sig: int, why: str) -> int | None:
        """Send ``sig`` to the running daemon and note ``why`` for the exit it causes; the pid, or
        None when no daemon runs right now (being restarted)."""
        with self._cond:
            if not self._running or self._pid is None:
                return None
            self._expected = why
            pid = self._pid
            os.kill(pid, sig)
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                self._running = False  # not serving any more: wait_running() waits for the restart
        self._record("signal", pid, signal=signal.Signals(sig).name, why=why)
        return pid

    def wait_running(self, timeout: float) -> bool:
        """Wait until a daemon runs (after a restart); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._running and self._pid is not None):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def running(self) -> bool:
        with self._cond:
            return self._running

    # ------------------------------------------------------------ the loop

    def _record(self, kind: str, pid: int | None, **detail: Any) -> None:
        e = self.rig.timeline.add("supervisor", kind, pid=pid, **detail)
        self.events.append(SupervisorEvent(e.t, kind, pid, detail))

    def _start_daemon(self) -> None:
        with self._cond:
            self._ready_at = None
            self._last_ping = None
        self.rig.start_daemon(timeout=self.start_timeout_s)  # waits for the idle screen
        assert self.rig.daemon is not None
        with self._cond:
            self._pid = self.rig.daemon.pid
            self._running = True
            self._expected = None
            self._cond.notify_all()
        self._record("started", self._pid)

    def _receive(self) -> None:
        assert self._sock is not None
        try:
            data, anc, _flags, _addr = self._sock.recvmsg(4096, socket.CMSG_SPACE(_CRED.size))
        except (socket.timeout, BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _CRED.size:
                pid = _CRED.unpack(payload[:_CRED.size])[0]
        with self._cond:
            if pid is None or pid != self._pid:
                return  # NotifyAccess=main: only the main process counts
            now = time.monotonic()
            fields = dict(line.split("=", 1) for line in data.decode("utf-8", "replace").splitlines() if "=" in line)
            if fields.get("READY") == "1" and self._ready_at is None:
                self._ready_at = now
                self._last_ping = now
                ready = True
            else:
                ready = False
            if fields.get("WATCHDOG") == "1":
                self._last_ping = now
        if ready:
            self._record("ready", pid, status=fields.get("STATUS"))

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
            self._receive()
            proc = self.rig.daemon
            if proc is None:
                continue
            code = proc.poll()
            if code is not None:
                with self._cond:
                    why, self._expected = self._expected, None
                    self._running = False
                    if self._stopping:
                        return
                self._record("exited", proc.pid, code=code, why=why or "unexpected")
                self._restart()
                continue
            with self._cond:
                late = (self._last_ping is not None and time.monotonic() - self._last_ping > self.watchdog_s)
                pid = self._pid
            if late:
                self._watchdog_kill(pid)

    def _watchdog_kill(self, pid: int | None) -> None:
        """What systemd does when WATCHDOG=1 stops: SIGABRT (+SIGCONT), TimeoutAbortSec, SIGKILL."""
        proc = self.rig.daemon
        if proc is None or pid is None:
            return
        with self._cond:
            self._running = False
            why, self._expected = self._expected, None
        self._record("watchdog_timeout", pid, watchdog_s=self.watchdog_s, why=why or "unexpected")
        for sig in (signal.SIGABRT, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(self.abort_timeout_s)
            how = "SIGABRT"
        except Exception:
            proc.kill()
            proc.wait()
            how = "SIGKILL"
        self._record("killed", pid, how=how, code=proc.returncode, why=f"watchdog ({why or 'unexpected'})")
        self._restart()

    def _restart(self) -> None:
        code = self.rig.stop_daemon(signal.SIGKILL)  # reaps the process and its log pump
        del code
        while True:
            with self._cond:
                if self._stopping:
                    return
            time.sleep(self.restart_s)
            self.restarts += 1
            try:
                self._start_daemon()
                return
            except RuntimeError as e:
                self._record("restart_failed", None, error=str(e).splitlines()[0])
                self.rig.stop_daemon(signal.SIGKILL)
