"""Real system services the simulator stands on: pcscd (with vpcd) and mosquitto.

We start them only when they are not already running, and stop only what we
started, so a developer's system pcscd is left alone. Readiness is checked the
safe way: never by connecting to vpcd's port (any connect is a card insertion),
but by asking PC/SC for its reader list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import IO

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")


def _stop_process(proc: subprocess.Popen | None, *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL: a crash) and wait; SIGKILL after 5 s when it does not go."""
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServiceError(RuntimeError):
    """A service the simulator needs could not be started; the message says why."""


def _readers() -> list[str]:
    try:
        from smartcard.System import readers

        return [str(r) for r in readers()]
    except Exception:
        return []


_owner: "Pcscd | None" = None  # the Pcscd object of this process that started the running pcscd


def respawn_pcscd(timeout: float = 10.0) -> bool:
    """Start pcscd again through the Pcscd object of this process that started it, after its
    process died or was killed (a test killing pcscd as a crash would): the simulator keeps
    owning it, so a later restart (the soak's pcscd_restart) can stop it. False when this
    process never started the pcscd that ran."""
    owner = _owner
    if owner is None:
        return False
    owner._terminate()
    owner._spawn(shutil.which("pcscd") or "/usr/sbin/pcscd", timeout, None)
    return True


class Pcscd:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._bench = False

    def ensure(self, timeout: float = 10.0, log_path: Path | None = None) -> "Pcscd":
        """pcscd with the vpcd readers, started if needed. Holds the machine's test bench
        (mynasim.benchlock) until ``stop``: another run must not stop or restart it meanwhile."""
        if not self._bench:
            from mynasim import benchlock

            benchlock.acquire()
            self._bench = True
        if any(r.startswith("Virtual PCD") for r in _readers()):
            return self
        exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
        if not os.path.exists(exe):
            raise ServiceError("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")
        if not Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists() and not list(
                Path("/usr/lib").glob("**/libifdvpcd.so*")):
            raise ServiceError("the vpcd driver is not installed (apt-get install vsmartcard-vpcd)")
        self._spawn(exe, timeout, log_path)
        return self

    def _spawn(self, exe: str, timeout: float, log_path: Path | None) -> None:
        global _owner
        if PCSCD_SOCKET.exists() and not _readers():
            # a stale socket from a killed pcscd: pcscd refuses to start over it
            try:
                PCSCD_SOCKET.unlink()
            except OSError:
                pass
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        # never --apdu: it would log VERIFY commands, i.e. PINs, to this file
        self.proc = subprocess.Popen([exe, "--foreground"], stdout=out, stderr=out)
        _owner = self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.startswith("Virtual PCD") for r in _readers()):
                return
            if self.proc.poll() is not None:
                raise ServiceError(f"pcscd exited at start with code {self.proc.returncode}")
            time.sleep(0.05)
        raise ServiceError("pcscd did not list the virtual readers within %.0f s" % timeout)

    def restart(self, log_path: Path | None = None, timeout: float = 10.0) -> bool:
        """Stop pcscd and start it again (the readers go and come back), if it is one this
        process started, through whichever Pcscd started it (a session fixture's, say: the
        soak's rig then restarts that one). False, and nothing done, for a system pcscd."""
        owner = self if self.proc is not None else _owner
        if owner is None or owner.proc is None:
            return False
        owner._terminate()
        owner._spawn(shutil.which("pcscd") or "/usr/sbin/pcscd", timeout, log_path)
        return True

    def _terminate(self) -> None:
        global _owner
        _stop_process(self.proc)
        self.proc = None
        if _owner is self:
            _owner = None

    def stop(self) -> None:
        self._terminate()
        if self._bench:
            from mynasim import benchlock

            self._bench = False
            benchlock.release()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A private mosquitto broker for one config file (tests): ready once every listener in
    ``ports`` accepts a TCP connection, stopped (and only it) by ``stop``. Started as root it
    drops to user mosquitto, so the config and every file it names must be world-readable."""

    def __init__(self, conf: Path, ports: tuple[int, ...], log_path: Path) -> None:
        self.conf = Path(conf)
        self.ports = tuple(ports)
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        import socket

        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            raise ServiceError("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
        self._log = open(self.log_path, "ab")  # appended: a restarted broker keeps its story
        self.proc = subprocess.Popen([exe, "-c", str(self.conf)], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise ServiceError(f"mosquitto did not start: {self.log_path.read_text(errors='replace')}")
                    time.sleep(0.02)
        return self

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean stop) or, with ``kill``, SIGKILL (a crash); ``start`` may follow."""
        _stop_process(self.proc, kill=kill)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
