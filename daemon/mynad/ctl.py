"""``mynactl``: the operator and technician command line.

Works on a running reader (``status``, ``visual-check`` through the control
socket), on its files (``outbox`` reads the pending host messages, ``check-config``)
and on the face models (``face-calibrate``, ``face-verify``).
"""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import sys
from pathlib import Path

from mynad.config import ConfigError, load_config

DEFAULT_CONFIG = "/etc/myna-reader/mynad.toml"


def control_path(cfg) -> Path:
    return cfg.reader.runtime_dir / "control.sock"


def read_line(s: socket.socket) -> bytes:
    """One reply line from the control socket (the daemon answers one JSON object per line)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _ask(path: Path, cmd: str) -> dict:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(path))
            s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
            data = read_line(s)
    except OSError as e:
        raise SystemExit(f"mynactl: the daemon is not answering on {path} ({e.strerror or e}); is mynad running?")
    return json.loads(data or b"{}")


EXIT_OK, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 2


def cmd_status(args) -> int:
    """Exit 0: all is well; 1: degraded (the problems are listed); 2: the daemon did not answer."""
    cfg = _config(args)
    try:
        reply = _ask(control_path(cfg), "status")
    except SystemExit as e:
        print(e, file=sys.stderr)
        return EXIT_UNREACHABLE
    status = reply.get("status") or {}
    problems = status.get("problems") or ([] if reply.get("ok") else [reply.get("error") or "no status"])
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        for key, value in status.items():
            if key != "problems":
                print(f"{key:>16}: {value}")
        print(f"{'health':>16}: " + ("ok" if not problems else "DEGRADED"))
        for p in problems:
            print(f"{'':>16}  - {p}")
    return EXIT_OK if not problems else EXIT_DEGRADED


def cmd_visual_check(args) -> int:
    reply = _ask(control_path(_config(args)), "visual-check")
    print("目視確認 armed for the next visit" if reply.get("ok") else reply.get("error"))
    return 0 if reply.get("ok") else 1


def cmd_outbox(args) -> int:
    cfg = _config(args)
    db = cfg.reader.state_dir / "outbox.sqlite"
    if not db.exists():
        print(f"no outbox at {db}")
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        # only the outbox table is owed to the host; rejected messages are kept aside for
        # inspection; the ids seen from the host are bookkeeping, not counted
        pending = con.execute("select count(*), min(stored) from outbox").fetchone()
        by_type = con.execute("select type, count(*) from outbox group by type order by type").fetchall()
        rejected = con.execute("select count(*) from rejected").fetchone()[0]
    except sqlite3.Error as e:
        raise SystemExit(f"mynactl: cannot read the outbox {db}: {e}")
    finally:
        con.close()
    counts = {"pending": pending[0], "pending_by_type": dict(by_type), "rejected": rejected,
              "oldest_pending": pending[1]}
    if getattr(args, "json", False):
        print(json.dumps(counts, ensure_ascii=False))
    else:
        print(f"owed to the host: {pending[0]}" + "".join(f"\n  {t}: {n}" for t, n in by_type))
        print(f"refused by the host (kept aside): {rejected}")
    return 0


def cmd_check_config(args) -> int:
    _config(args)
    print(f"{args.config}: OK")
    return 0


def _read_secret(fd: int, prompt: str | None = None, capacity: int = 64) -> bytearray:
    """One line from ``fd`` into a bytearray, echo off when ``prompt`` (a tty) is given.

    Not getpass: getpass returns an immutable ``str`` that cannot be wiped. Reading byte by
    byte with os.readv keeps the digits out of Python's buffered I/O; the tty's own line
    editing (backspace) still works in canonical mode.
    """
    import os
    import termios

    from mynad.staffauth import wipe

    old = None
    if prompt is not None:
        old = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        os.write(fd, prompt.encode())  # after echo is off: whatever is typed once it shows stays hidden
    buf, one, n = bytearray(capacity), bytearray(1), 0
    try:
        while os.readv(fd, [one]) == 1 and one[0] not in (0x0A, 0x0D):
            if n == capacity:
                raise SystemExit("mynactl: the staff password is too long")
            buf[n] = one[0]
            n += 1
        out = bytearray(n)
        out[:] = memoryview(buf)[:n]
        return out
    finally:
        wipe(buf)
        wipe(one)
        if old is not None:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            os.write(fd, b"\n")


def cmd_staff_password(args) -> int:
    """Set, clear or show the 目視確認 password (stored with scrypt in the state dir)."""
    import hmac
    import os
    import time

    from mynad.staffauth import LockoutPolicy, StaffAuthError, StaffGate, clear_password, set_password, wipe

    cfg = _config(args)
    state_dir, length = cfg.reader.state_dir, cfg.flow.staff_password_length
    if args.action == "clear":
        gone = clear_password(state_dir)
        print("staff password cleared: 目視確認 at the reader is refused until a new one is set" if gone
              else "no staff password was set")
        return 0
    if args.action == "status":
        gate = StaffGate(state_dir, LockoutPolicy(cfg.staff.max_wrong, cfg.staff.lock_s, cfg.staff.lock_max_s))
        now = time.time()
        state = gate.lockout(now)
        print(f"staff password: {'set' if gate.is_set() else 'not set'}"
              + (f"; locked for {state.locked_until - now:.0f} s more" if state.locked(now) else "")
              + (f"; {state.wrong} wrong since the last success" if state.wrong else ""))
        return 0
    if args.stdin:
        secret = _read_secret(0)
    else:
        try:
            tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            raise SystemExit("mynactl: no terminal to ask the password on; use --stdin in scripts")
        try:
            secret = _read_secret(tty, f"new staff password ({length} digits): ")
            again = _read_secret(tty, "the same again: ")
        finally:
            os.close(tty)
        same = hmac.compare_digest(secret, again)
        wipe(again)
        if not same:
            wipe(secret)
            raise SystemExit("mynactl: the two entries differ; nothing was changed")
    try:
        path = set_password(state_dir, secret, length=length)
    except (StaffAuthError, OSError) as e:
        raise SystemExit(f"mynactl: {e}")
    print(f"staff password set ({path}); any staff lockout was lifted")
    return 0


def _config(args):
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"mynactl: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mynactl", description="operator and technician tool for mynad")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the daemon's config (default {DEFAULT_CONFIG})")
    from mynad import __version__

    parser.add_argument("--version", action="version", version=f"mynactl {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("status", help="what the running reader is doing (exit 0 ok, 1 degraded, 2 no answer)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("visual-check", help="arm 目視確認 (staff visual check) for the next visit")
    p.set_defaults(func=cmd_visual_check)
    p = sub.add_parser("outbox", help="count the results still owed to the host")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser("staff-password", help="set or clear the 目視確認 staff password (scrypt, in the state dir)")
    p.add_argument("action", choices=("set", "clear", "status"))
    p.add_argument("--stdin", action="store_true", help="set: read one line from stdin (for scripts), no prompt")
    p.set_defaults(func=cmd_staff_password)
    p = sub.add_parser("check-config", help="validate the config file")
    p.set_defaults(func=cmd_check_config)
    from mynad.ctl_hostkey import add_host_key

    add_host_key(sub)
    from mynad.ctl_console import add_console_commands  # console, selftest, logs, support-bundle, factory-reset

    add_console_commands(sub)
    from mynad.ctl_release import add_release_commands  # update, rollback, versions

    add_release_commands(sub)
    try:
        from myna_models.cli import add_subcommands
    except ImportError as e:  # the face tools need the models package
        print(f"mynactl: face commands unavailable: {e}", file=sys.stderr)
    else:
        add_subcommands(sub)
    try:
        from myna_models.cardface.cli import add_card_face
    except ImportError as e:  # the card-face reader needs the models package
        print(f"mynactl: card-face command unavailable: {e}", file=sys.stderr)
    else:
        add_card_face(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
