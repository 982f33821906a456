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


def _ask(path: Path, cmd: str) -> dict:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(path))
            s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        raise SystemExit(f"mynactl: the daemon is not answering on {path} ({e.strerror or e}); is mynad running?")
    return json.loads(data or b"{}")


def cmd_status(args) -> int:
    cfg = _config(args)
    reply = _ask(control_path(cfg), "status")
    if args.json:
        print(json.dumps(reply, ensure_ascii=False, indent=2))
    else:
        for key, value in (reply.get("status") or {}).items():
            print(f"{key:>16}: {value}")
    return 0 if reply.get("ok") else 1


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
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for t in tables:
            n = con.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608 (table names from sqlite_master)
            print(f"{t}: {n} pending")
    finally:
        con.close()
    return 0


def cmd_check_config(args) -> int:
    _config(args)
    print(f"{args.config}: OK")
    return 0


def _config(args):
    try:
        return load_config(args.config)
    except ConfigError as e:
        raise SystemExit(f"mynactl: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mynactl", description="operator and technician tool for mynad")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the daemon's config (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("status", help="what the running reader is doing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("visual-check", help="arm 目視確認 (staff visual check) for the next visit")
    p.set_defaults(func=cmd_visual_check)
    p = sub.add_parser("outbox", help="count the results still owed to the host")
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser("check-config", help="validate the config file")
    p.set_defaults(func=cmd_check_config)
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
