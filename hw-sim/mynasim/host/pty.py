"""A pair of connected serial devices: the reader opens one end, the virtual host the other.

With socat: ``socat pty,raw,echo=0,link=RUN/ttyReader pty,raw,echo=0,link=RUN/ttyHost``
(stable paths, like a real device). Without socat: two ``os.openpty()`` pairs, both
made raw, bridged by a small relay thread, with the same two symlinks.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
import tty
from pathlib import Path
from typing import Callable


def pty_pair(run_dir: Path) -> tuple[str, str, Callable[[], None]]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reader, host = run_dir / "ttyReader", run_dir / "ttyHost"
    for p in (reader, host):
        if p.is_symlink() or p.exists():
            p.unlink()
    if shutil.which("socat"):
        return _socat_pair(reader, host)
    return _openpty_pair(reader, host)


def _socat_pair(reader: Path, host: Path) -> tuple[str, str, Callable[[], None]]:
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={reader}", f"pty,raw,echo=0,link={host}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 5
    while not (reader.exists() and host.exists()):
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"socat exited with code {proc.returncode}: {err.strip()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("socat did not create the pty pair within 5 s")
        time.sleep(0.005)

    def close() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    close.pid = proc.pid  # type: ignore[attr-defined]
    return str(reader), str(host), close


def _openpty_pair(reader: Path, host: Path) -> tuple[str, str, Callable[[], None]]:
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (m1, s1, m2, s2):
        tty.setraw(fd)
    os.symlink(os.ttyname(s1), reader)
    os.symlink(os.ttyname(s2), host)
    stop_r, stop_w = os.pipe()

    def relay() -> None:
        peer = {m1: m2, m2: m1}
        while True:
            r, _, _ = select.select([m1, m2, stop_r], [], [], 1.0)
            if stop_r in r:
                return
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the slave is closed right now (EIO); it can be reopened
                    time.sleep(0.01)
                    continue
                try:
                    os.write(peer[fd], data)
                except OSError:
                    pass

    t = threading.Thread(target=relay, name="pty-relay", daemon=True)
    t.start()

    def close() -> None:
        os.write(stop_w, b"x")
        t.join(2)
        for fd in (m1, s1, m2, s2, stop_r, stop_w):
            try:
                os.close(fd)
            except OSError:
                pass
        for p in (reader, host):
            if p.is_symlink():
                p.unlink()

    return str(reader), str(host), close
