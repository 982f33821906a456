"""The console's thin shell: a raw tty, plain VT100 drawing, and the effects carried out.

It runs as the technician's login shell on the UART (getty opened the line, so it is our
controlling terminal). One select() loop waits on the terminal and, while a self-test
runs, on the daemon's connection; every event goes to the pure model, then the whole
screen is redrawn (clear, home, 24 lines: ~2 KB, 0.2 s at 115200 baud). Nothing on the
screen is state the terminal must keep, so a technician who reconnects presses Ctrl-L.

A hangup ends it cleanly: SIGHUP (the line dropped, getty's session ended) or end of input
stops the loop, aborts a running self-test and puts the tty back as it was.

Children that need the line itself (``sz``, ``rz``, the staff-password prompt) get it with
the tty back in its normal mode, and the screen is redrawn when they finish.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty
from pathlib import Path
from typing import Any

from mynad.console import model as m
from mynad.console.keys import decode

CLEAR = b"\x1b[H\x1b[2J"
UPDATE_DIR_ENV = "MYNA_UPDATE_DIR"  # where received bundles land (default /var/tmp: room for a bundle)


class Hangup(Exception):
    pass


class Terminal:
    def __init__(self, config: str, fd_in: int = 0, fd_out: int = 1) -> None:
        from mynad import __version__
        from mynad import ctl_console as c

        self.c = c
        self.config_path = config
        self.cfg = c.config_of(argparse.Namespace(config=config))
        self.fd_in, self.fd_out = fd_in, fd_out
        self.model = m.Console(__version__, self.cfg.reader.id)
        self.session: Any = None  # ctl_console.TestSession while a self-test runs
        self._saved: list | None = None
        self._hup = False

    # ------------------------------------------------------------ tty

    def _raw(self) -> None:
        if os.isatty(self.fd_in):
            if self._saved is None:
                self._saved = termios.tcgetattr(self.fd_in)
            tty.setraw(self.fd_in, termios.TCSANOW)
            # keep output post-processing: "\n" becomes CR LF on the line
            attrs = termios.tcgetattr(self.fd_in)
            attrs[1] |= termios.OPOST | termios.ONLCR
            termios.tcsetattr(self.fd_in, termios.TCSANOW, attrs)

    def _cooked(self) -> None:
        if self._saved is not None and os.isatty(self.fd_in):
            try:
                termios.tcsetattr(self.fd_in, termios.TCSANOW, self._saved)
            except termios.error:
                pass

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd_out, view)
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno in (errno.EIO, errno.EPIPE):
                    raise Hangup() from None
                raise
            view = view[n:]

    def draw(self) -> None:
        lines = self.model.screen()
        self._write(CLEAR + "\n".join(lines).encode("utf-8"))

    # ------------------------------------------------------------ loop

    def run(self) -> int:
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_hup)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is a key here (abort), never a kill
        self._raw()
        try:
            self.draw()
            while not self._hup:
                fds: list[Any] = [self.fd_in] + ([self.session] if self.session is not None else [])
                try:
                    ready, _, _ = select.select(fds, [], [], 1.0)
                except InterruptedError:
                    continue
                if self.session is not None and self.session in ready:
                    if self._session_lines():
                        return 0
                if self.fd_in in ready:
                    try:
                        data = os.read(self.fd_in, 256)
                    except OSError:
                        data = b""
                    if not data:
                        raise Hangup()
                    for key in decode(data):
                        if self._event(m.Key(key)):
                            return 0
                    self.draw()
        except Hangup:
            pass
        finally:
            if self.session is not None:
                self.session.abort()
                self.session.close()
                self.session = None
            self._cooked()
        return 0

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._hup = True

    def _session_lines(self) -> bool:
        s = self.session
        quit_ = False
        for msg in s.lines():
            if "ok" in msg:
                s.close()
                self.session = None
                quit_ |= self._event(m.TestEnded(msg))
                break
            quit_ |= self._event(m.TestLine(msg))
        if self.session is not None and s.closed:
            s.close()
            self.session = None
            quit_ |= self._event(m.TestEnded({"ok": False, "error": "the daemon closed the connection"}))
        self.draw()
        return quit_

    def _event(self, event: m.Event) -> bool:
        """Feed the model, carry out its effects; True when the console should end."""
        pending = list(self.model.handle(event))
        while pending:
            effect = pending.pop(0)
            if isinstance(effect, m.Quit):
                return True
            if isinstance(effect, m.StartTest):
                try:
                    self.session = self.c.TestSession(self.c.control_path(self.cfg), effect.name)
                except self.c.DaemonUnreachable as e:
                    pending += self.model.handle(m.TestEnded({"ok": False, "error": str(e)}))
            elif isinstance(effect, m.AnswerTest):
                if self.session is not None:
                    self.session.answer(effect.yes)
            elif isinstance(effect, m.AbortTest):
                if self.session is not None:
                    self.session.abort()
            elif isinstance(effect, m.Run):
                self.model.start_busy(effect.action)
                self.draw()
                pending += self.model.handle(self._run(effect))
        return False

    # ------------------------------------------------------------ actions

    def _run(self, r: m.Run) -> m.Done:
        try:
            return getattr(self, "_do_" + r.action.replace("-", "_"))(r)
        except Hangup:
            raise
        except Exception as e:  # an action must answer with a sentence, not end the technician's session
            return m.Done(r.action, False, f"{r.action} failed: {type(e).__name__}: {e}")

    def _ctl(self, *argv: str, root: bool = False, timeout: float = 600) -> tuple[int, str]:
        cmd = self.c.mynactl_argv(self.config_path) + list(argv)
        if root:
            cmd = self.c.privileged(cmd)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return 127, f"could not run {' '.join(cmd[:3])}...: {e}"
        return out.returncode, (out.stdout + out.stderr).strip()

    def _do_status(self, r: m.Run) -> m.Done:
        from mynad.support_bundle import clock_state

        try:
            reply = self.c.ask(self.c.control_path(self.cfg), "status")
            results = self.c.ask(self.c.control_path(self.cfg), "selftest-results").get("results") or {}
        except self.c.DaemonUnreachable:
            reply, results = None, {}
        ok, text = self.c.status_text(reply, self.c.owed_counts(self.cfg), clock_state())
        return m.Done("status", ok, text, {"results": results})

    def _do_logs(self, r: m.Run) -> m.Done:
        from mynad.support_bundle import journal

        ok, text = journal(300, r.args.get("priority"))
        return m.Done("logs", ok, text)

    def _do_versions(self, r: m.Run) -> m.Done:
        code, text = self._ctl("versions")
        return m.Done("versions", code == 0, text or f"mynactl versions: exit {code}")

    def _do_check_config(self, r: m.Run) -> m.Done:
        mynad = Path(sys.executable).with_name("mynad")
        cmd = [str(mynad)] if mynad.exists() else [sys.executable, "-m", "mynad.main"]
        out = subprocess.run([*cmd, "--check-config", "--config", self.config_path], capture_output=True, text=True,
                             timeout=120, stdin=subprocess.DEVNULL)
        text = (out.stdout + out.stderr).strip() or f"exit {out.returncode}"
        return m.Done("check-config", out.returncode == 0, text)

    def _do_rollback(self, r: m.Run) -> m.Done:
        code, text = self._ctl("rollback", root=True)
        return m.Done("rollback", code == 0, text or f"mynactl rollback: exit {code}")

    def _do_staff_password(self, r: m.Run) -> m.Done:
        code = self._with_line(self.c.mynactl_argv(self.config_path) + ["staff-password", "set"])
        return m.Done("staff-password", code == 0, "staff password set" if code == 0 else
                      f"the staff password was not changed (exit {code})")

    def _do_support_bundle(self, r: m.Run) -> m.Done:
        sz = shutil.which("sz")
        if sz is None:
            return m.Done("support-bundle", False, "sz (lrzsz) is not installed on this reader")
        with tempfile.TemporaryDirectory(prefix="myna-support-") as tmp:
            path = self.c.make_support_bundle(self.cfg, self.config_path, Path(tmp) / _bundle_name(self.cfg))
            size = path.stat().st_size
            # only now ask for the receive: sz waits for it, an early rz would time out meanwhile
            self.model.busy = (f"Sending {path.name} ({size:,} bytes) with ZMODEM (sz).\n"
                               "Start your terminal's ZMODEM receive now: picocom C-a C-r, tio Ctrl-t r.")
            self.draw()
            code = self._with_line([sz, "-b", "-e", path.name], cwd=tmp)
        return m.Done("support-bundle", code == 0, f"{path.name}\n({size:,} bytes) " + (
            "was sent with ZMODEM" if code == 0 else f"was NOT sent: sz exit {code} (was the receive started?)"))

    def _do_receive_update(self, r: m.Run) -> m.Done:
        rz = shutil.which("rz")
        if rz is None:
            return m.Done("receive-update", False, "rz (lrzsz) is not installed on this reader")
        base = os.environ.get(UPDATE_DIR_ENV) or "/var/tmp"
        tmp = tempfile.mkdtemp(prefix="myna-update-", dir=base)  # 0700: nobody else sees the bundle
        code = self._with_line([rz, "-b", "-E", "--restricted"], cwd=tmp)
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if code != 0 or len(files) != 1:
            shutil.rmtree(tmp, ignore_errors=True)
            return m.Done("receive-update", False, f"no bundle was received (rz exit {code}, {len(files)} file(s))")
        f = files[0]
        digest = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return m.Done("receive-update", True, "", {"path": str(f), "name": f.name, "size": f.stat().st_size,
                                                   "sha256": digest.hexdigest()})

    def _do_update(self, r: m.Run) -> m.Done:
        f = Path(r.args["file"])
        try:
            code, text = self._ctl("update", str(f), root=True, timeout=1800)
        finally:
            shutil.rmtree(f.parent, ignore_errors=True)
        return m.Done("update", code == 0, text or f"mynactl update: exit {code}")

    def _do_discard_update(self, r: m.Run) -> m.Done:
        shutil.rmtree(Path(r.args["file"]).parent, ignore_errors=True)
        return m.Done("discard-update", True, "the received bundle was deleted; nothing was installed")

    def _do_factory_reset_plan(self, r: m.Run) -> m.Done:
        words, _ = self.c.reset_plan(self.cfg)
        owed = int(self.c.owed_counts(self.cfg).get("pending") or 0)
        return m.Done("factory-reset-plan", True, "", {"deletes": words, "owed": owed})

    def _do_factory_reset(self, r: m.Run) -> m.Done:
        yes = ["--yes", "--yes"] if r.args.get("discard_owed") else ["--yes"]
        code, text = self._ctl("factory-reset", *yes, root=True)
        return m.Done("factory-reset", code == 0, text)

    def _with_line(self, argv: list[str], cwd: str | None = None) -> int:
        """Run a child that talks on the line itself (sz, rz, a password prompt)."""
        self._cooked()
        try:
            return subprocess.run(argv, cwd=cwd, stdin=self.fd_in, stdout=self.fd_out, stderr=subprocess.DEVNULL
                                  if argv[0].endswith(("sz", "rz")) else None).returncode
        finally:
            self._raw()
            if argv[0].endswith(("sz", "rz")):
                self._drain()

    def _drain(self, quiet_s: float = 0.7, limit_s: float = 5.0) -> None:
        """After a transfer the terminal's rz/sz may still send a frame or two (a late ZRINIT,
        cancel bytes): read and drop input until the line has been quiet for ``quiet_s``, so
        none of it is taken for a menu key, and so our redraw is not eaten by their rz."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd_in], [], [], quiet_s)
            if not ready:
                return
            try:
                if not os.read(self.fd_in, 4096):
                    return
            except OSError:
                return


def _bundle_name(cfg: Any) -> str:
    from mynad.support_bundle import default_name

    return default_name(cfg.reader.id)


def run_console(config: str) -> int:
    if not os.isatty(0):
        print("mynactl console: needs a terminal (the serial console or ssh -t)", file=sys.stderr)
        return 2
    return Terminal(config).run()
