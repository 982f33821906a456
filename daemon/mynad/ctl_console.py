"""``mynactl`` subcommands behind the technician console, usable on their own with ``--json``.

* ``console``                        the menu on the serial line (mynad.console.terminal)
* ``selftest [NAME] [--json]``       run one self-test in the daemon, or all that need no hands
* ``logs [-p PRIO] [-n N]``          recent journal lines of mynad
* ``support-bundle [-o FILE]``       write the support bundle (mynad.support_bundle)
* ``factory-reset [--yes [--yes]]``  delete everything the site accumulated (see ``reset_plan``)

Exit codes (the same words in docs/console.md): 0 done / all passed, 1 a test failed or the
action failed, 2 the daemon did not answer, 3 refused (rights, busy reader, no journal, results
owed without a second ``--yes``), 4 nothing was done because confirmation was missing.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from mynad.ctl import read_line

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_REFUSED, EXIT_UNCONFIRMED = 0, 1, 2, 3, 4


class DaemonUnreachable(Exception):
    """The control socket did not answer; the message says where and why."""


# ---------------------------------------------------------------- control socket


def ask(path: Path, cmd: str, timeout: float = 10) -> dict[str, Any]:
    """One request, one reply (``status``, ``selftest-results``)."""
    with _connect(path, timeout) as s:
        s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
        return json.loads(read_line(s) or b"{}")


def _connect(path: Path, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as e:
        s.close()
        raise DaemonUnreachable(f"the daemon is not answering on {path} ({e.strerror or e}); is mynad running?")
    return s





class TestSession:
    """A self-test conversation with the daemon (mynad.selftest.Conversation's other end).

    ``fileno()`` lets a select() loop (the console) wait on it and the terminal together;
    ``lines()`` yields what is readable without blocking; the final line has ``"ok"``.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.sock = _connect(path, 10)
        self.sock.sendall((json.dumps({"cmd": "selftest", "name": name}) + "\n").encode())
        self.sock.setblocking(False)
        self._buf = b""
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def lines(self) -> Iterator[dict[str, Any]]:
        try:
            chunk = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
        self._buf += chunk
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                yield msg
        if self.closed and not self._buf:
            return

    def answer(self, yes: bool) -> None:
        self._send({"answer": bool(yes)})

    def abort(self) -> None:
        self._send({"abort": True})

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall((json.dumps(msg) + "\n").encode())
            self.sock.setblocking(False)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def run_selftest(path: Path, name: str, on_line: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any]:
    """Blocking: run one self-test; ``on_line`` sees each progress/ask line and answers asks."""
    session = TestSession(path, name)
    try:
        while True:
            select.select([session], [], [], 1.0)
            for msg in session.lines():
                if "ok" in msg:
                    return msg
                answer = on_line(msg)
                if "ask" in msg:
                    session.answer(bool(answer))
            if session.closed:
                return {"ok": False, "error": "the daemon closed the connection before the test ended"}
    finally:
        session.close()


# ---------------------------------------------------------------- shared helpers


def config_of(args: argparse.Namespace) -> Any:
    from mynad.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"mynactl: {e}")


def control_path(cfg: Any) -> Path:
    return cfg.reader.runtime_dir / "control.sock"


def mynactl_argv(config: str) -> list[str]:
    """How to run mynactl again as a child (update, rollback, versions, staff-password).

    ``MYNACTL`` overrides it (tests put a recording wrapper there); otherwise the mynactl beside
    this Python (the release's venv), else ``python -m mynad.ctl``.
    """
    if os.environ.get("MYNACTL"):
        base = os.environ["MYNACTL"].split()
    else:
        beside = Path(sys.executable).with_name("mynactl")
        base = [str(beside)] if beside.exists() else [sys.executable, "-m", "mynad.ctl"]
    return [*base, "--config", str(config)]


def privileged(argv: list[str]) -> list[str]:
    """Commands that change the installation run as root: through ``sudo -n`` when we are not
    (the technician's sudoers rule names exactly these commands; docs/console.md)."""
    if os.geteuid() == 0 or shutil.which("sudo") is None:
        return argv
    return ["sudo", "-n", *argv]


def status_text(reply: dict[str, Any] | None, owed: dict[str, Any], clock: dict[str, Any]) -> tuple[bool, str]:
    """(healthy, the status page's lines) from the daemon's status reply."""
    from mynad.console.model import describe_code

    if reply is None:
        return False, "The daemon is not answering on its control socket: mynad is not running.\n" \
                      "Look at the logs (menu 3) and check the configuration (menu 8)."
    st = reply.get("status") or {}
    host = st.get("host") or {}
    up = int(st.get("uptime_s") or 0)
    sync = clock.get("synchronised")
    last = st.get("last_error") or {}
    lines = [
        f"version        {st.get('version', '?')}",
        f"uptime         {up // 86400} d {up % 86400 // 3600} h {up % 3600 // 60} min",
        f"clock          {'synchronised' if sync else 'NOT synchronised' if sync is False else 'unknown'}"
        f" ({clock.get('source', 'no source')})",
        f"reader state   {st.get('state', '?')}  (screen {st.get('screen')})",
        f"card reader    {st.get('card_reader')}  (monitor {st.get('card_monitor')})",
        f"cameras        face: {st.get('face')}   card face: {st.get('card_face')}",
        f"host link      {'connected' if host.get('connected') else 'NOT connected'} via {host.get('transport')}",
        f"results owed   {owed.get('pending', '?')} to the host" + (
            f" (oldest {owed.get('oldest_pending')})" if owed.get("oldest_pending") else ""),
        f"last error     {describe_code(last.get('code')) if last else 'none since the daemon started'}",
    ]
    problems = st.get("problems") or []
    lines.append("health         " + ("ok" if not problems else "DEGRADED"))
    lines += [f"  - {p}" for p in problems]
    return not problems, "\n".join(lines)


def owed_counts(cfg: Any) -> dict[str, Any]:
    """What is owed to the host: from the running daemon (the technician's group cannot read the
    state directory, by design), else from the outbox file (root, or the daemon stopped)."""
    from mynad.support_bundle import outbox_counts

    try:
        host = (ask(control_path(cfg), "status", timeout=5).get("status") or {}).get("host") or {}
        if isinstance(host.get("pending"), int):
            return {"pending": host["pending"] + int(host.get("backlog") or 0), "source": "daemon"}
    except (DaemonUnreachable, ValueError, OSError):
        pass
    return outbox_counts(cfg.reader.state_dir)


# ---------------------------------------------------------------- selftest


def cmd_selftest(args: argparse.Namespace) -> int:
    from mynad.console.model import LOOK_ONLY
    from mynad.selftest import TESTS

    cfg = config_of(args)
    names = [args.name] if args.name else list(LOOK_ONLY)
    if args.name and args.name not in TESTS:
        print(f"mynactl: unknown self-test {args.name!r}; known: {', '.join(TESTS)}", file=sys.stderr)
        return EXIT_FAILED
    tty = sys.stdin.isatty()

    def on_line(msg: dict[str, Any]) -> bool | None:
        if "ask" in msg:
            if not tty or args.json:
                return False  # nobody to ask: the verdict is "not confirmed"
            return input(f"{msg['ask']} [y/n] ").strip().lower().startswith("y")
        if not args.json:
            print(f"  {msg.get('progress')}", flush=True)
        return None

    results, code = {}, EXIT_OK
    for name in names:
        try:
            reply = run_selftest(control_path(cfg), name, on_line)
        except DaemonUnreachable as e:
            print(f"mynactl: {e}", file=sys.stderr)
            return EXIT_UNREACHABLE
        if not reply.get("ok"):
            results[name] = {"name": name, "ok": False, "reason": reply.get("error"), "refused": True}
            code = max(code, EXIT_REFUSED)
        else:
            results[name] = reply["result"]
            if not reply["result"].get("ok"):
                code = max(code, EXIT_FAILED) if code != EXIT_REFUSED else code
        if not args.json:
            r = results[name]
            print(f"{name:>18}: {'PASS' if r.get('ok') else 'FAIL'}: {r.get('reason')}", flush=True)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    return code


# ---------------------------------------------------------------- logs


PRIORITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def cmd_logs(args: argparse.Namespace) -> int:
    from mynad.support_bundle import journal

    ok, text = journal(args.n, args.p)
    if args.json:
        print(json.dumps({"journal": ok, "priority": args.p, "lines": text.splitlines() if ok else [],
                          "note": None if ok else text}, ensure_ascii=False))
    else:
        print(text)
    return EXIT_OK if ok else EXIT_REFUSED


# ---------------------------------------------------------------- support bundle


def make_support_bundle(cfg: Any, config_path: str, out: Path | None) -> Path:
    from mynad.support_bundle import build, default_name

    path = control_path(cfg)
    try:
        status = ask(path, "status")
        results = ask(path, "selftest-results").get("results")
    except DaemonUnreachable as e:
        status, results = {"note": str(e)}, None
    out = Path(out) if out else Path.cwd() / default_name(cfg.reader.id)
    return build(out, config_path=Path(config_path), state_dir=cfg.reader.state_dir, status=status,
                 selftests=results, mynactl=mynactl_argv(config_path))


def cmd_support_bundle(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    try:
        out = make_support_bundle(cfg, args.config, args.o)
    except OSError as e:
        print(f"mynactl: cannot write the support bundle: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"path": str(out), "size": out.stat().st_size}))
    else:
        print(f"support bundle written: {out} ({out.stat().st_size} bytes)")
    return EXIT_OK


# ---------------------------------------------------------------- factory reset


def reset_plan(cfg: Any) -> tuple[list[str], list[Path]]:
    """(what is deleted, in words; the paths) — everything the site accumulated."""
    state = cfg.reader.state_dir
    words = [
        f"the outbox: results and visit messages for the host ({state}/outbox.sqlite)",
        "the host link's frame counters and the host key file (the reader must be paired again: "
        "mynactl host-key import)",
        "the staff password hash and its lockout",
        "the face calibration and the spoken-prompt cache",
        "every other file in the state directory " + str(state),
        "the system journal (every log line of this reader)",
    ]
    paths = [state, Path(cfg.host.key_file)]
    cache = getattr(cfg.voice, "cache_dir", None)
    if cache is not None:
        paths.append(Path(cache))
    return words, paths


def _daemon_running(cfg: Any) -> bool:
    try:
        ask(control_path(cfg), "status", timeout=3)
        return True
    except (DaemonUnreachable, ValueError, OSError):
        return False


def factory_reset(cfg: Any, discard_owed: bool) -> tuple[int, str]:
    owed = int(owed_counts(cfg).get("pending") or 0)
    if owed and not discard_owed:
        return EXIT_REFUSED, (f"refused: {owed} result(s) are still owed to the clinic host and would be lost; "
                              "fix the host link and wait, or confirm twice (--yes --yes) to delete them anyway")
    systemd = Path("/run/systemd/system").exists() and shutil.which("systemctl") is not None
    if systemd:
        subprocess.run(["systemctl", "stop", "mynad"], check=False, timeout=60)
    elif _daemon_running(cfg):
        return EXIT_REFUSED, "refused: mynad is running and this machine has no systemd to stop it; stop it first"
    _, paths = reset_plan(cfg)
    done = []
    for p in paths:
        if p.is_dir():
            for child in p.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            done.append(f"emptied {p}")
        elif p.exists() or p.is_symlink():
            p.unlink()
            done.append(f"deleted {p}")
    if shutil.which("journalctl") is not None:
        subprocess.run(["journalctl", "--rotate"], capture_output=True, check=False, timeout=60)
        r = subprocess.run(["journalctl", "--vacuum-time=1s"], capture_output=True, check=False, timeout=120)
        done.append("journal vacuumed" if r.returncode == 0 else "journal: could not vacuum (no journal?)")
    if systemd:
        subprocess.run(["systemctl", "start", "mynad"], check=False, timeout=60)
        done.append("mynad started again (it waits for a host key: mynactl host-key import)")
    return EXIT_OK, "factory reset done: " + "; ".join(done)


def cmd_factory_reset(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    words, _ = reset_plan(cfg)
    owed = int(owed_counts(cfg).get("pending") or 0)
    if not args.yes:
        msg = {"done": False, "deletes": words, "owed": owed,
               "note": "nothing was deleted: give --yes to do it" + (" (twice: results are owed)" if owed else "")}
        print(json.dumps(msg, ensure_ascii=False) if args.json else
              "A factory reset deletes:\n" + "\n".join(f"  - {w}" for w in words) + f"\n{msg['note']}")
        return EXIT_UNCONFIRMED
    code, text = factory_reset(cfg, discard_owed=args.yes >= 2)
    print(json.dumps({"done": code == EXIT_OK, "message": text, "owed": owed}) if args.json else text)
    return code


# ---------------------------------------------------------------- console


def cmd_console(args: argparse.Namespace) -> int:
    from mynad.console.terminal import run_console

    return run_console(args.config)


def add_console_commands(sub: argparse._SubParsersAction) -> None:
    """Register console, selftest, logs, support-bundle and factory-reset under mynactl."""
    from mynad.selftest import TESTS

    p = sub.add_parser("console", help="the technician's menu for the serial console (login shell)")
    p.set_defaults(func=cmd_console)
    p = sub.add_parser("selftest", help="hardware self-tests in the daemon (exit 0 pass, 1 fail, 2 no daemon, "
                                        "3 refused)")
    p.add_argument("name", nargs="?", choices=tuple(TESTS), help="one test (default: those that need no hands)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_selftest)
    p = sub.add_parser("logs", help="recent journal lines of mynad (exit 3: no journal here)")
    p.add_argument("-p", choices=PRIORITY_NAMES, default=None, help="this priority and more severe only")
    p.add_argument("-n", type=int, default=200, help="how many lines (default 200)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_logs)
    p = sub.add_parser("support-bundle", help="one .tar.gz for support: versions, masked config, journal, counts")
    p.add_argument("-o", type=Path, default=None, metavar="FILE", help="where to write it (default: here)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_support_bundle)
    p = sub.add_parser("factory-reset", help="delete everything the site accumulated (twice --yes if results "
                                             "are owed to the host)")
    p.add_argument("--yes", action="count", default=0, help="do it (give it twice to discard owed results)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_factory_reset)
