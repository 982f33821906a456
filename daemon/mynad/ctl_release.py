"""``mynactl update | rollback | versions``: signed updates with a trial, and going back.

Every refusal is one plain sentence on stderr with exit status 1, and nothing changed (the
install and the switch are built so: see mynad.release.install). ``--root`` works on a scratch
install tree (tests, or an SD card mounted elsewhere); then systemd is never touched.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

UNIT = "mynad.service"


def _layout(args):
    from mynad.release.layout import Layout

    return Layout(Path(args.root))


def _under_systemd(args) -> bool:
    return args.root == "/" and not args.no_restart and Path("/run/systemd/system").is_dir()


def _restart(args) -> str | None:
    """Restart mynad on the switched release; the unit's boot check counts the trial start."""
    if not _under_systemd(args):
        return None
    r = subprocess.run(["systemctl", "restart", "--no-block", UNIT], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"systemctl exit {r.returncode}")


def _refuse(args, sentence: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": sentence}, ensure_ascii=False))
    print(f"mynactl: {sentence}", file=sys.stderr)
    return 1


def cmd_update(args) -> int:
    from mynad.release.install import DEFAULT_PYTHON, InstallRefused, install_release
    from mynad.release.keys import load_public_keys

    layout = _layout(args)
    if not any(layout.keys_dir.glob("*.pub")):
        return _refuse(args, f"no release key is installed in {layout.keys_dir}, so no bundle can be checked; "
                             "nothing was changed.")
    try:
        keys = load_public_keys(layout.keys_dir)
    except Exception as e:
        return _refuse(args, f"{e} Nothing was changed.")
    try:
        res = install_release(layout, Path(args.bundle), keys, force=args.force,
                              python=args.python or DEFAULT_PYTHON,
                              confirm_after_s=args.confirm_after,
                              progress=lambda s: None if args.json else print(f"update: {s}", flush=True))
    except InstallRefused as e:
        return _refuse(args, str(e))
    except PermissionError as e:
        return _refuse(args, f"no permission to write {e.filename} (run mynactl update as root); "
                             "nothing was changed.")
    restart_error = _restart(args)
    out: dict[str, Any] = {"ok": True, **res.to_json(), "restarted": _under_systemd(args) and not restart_error}
    if restart_error:
        out["restart_error"] = restart_error
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"release {res.version} installed in {res.seconds.get('total', 0):.0f} s and made current"
              + (f", on trial: it goes back to {res.previous} by itself unless it starts healthy"
                 if res.on_trial else "") + ".")
        if restart_error:
            print(f"mynactl: mynad could not be restarted ({restart_error}); run: systemctl restart mynad",
                  file=sys.stderr)
    return 0 if not restart_error else 1


def cmd_rollback(args) -> int:
    from mynad.release.switch import SwitchError, rollback

    try:
        left, to = rollback(_layout(args))
    except SwitchError as e:
        return _refuse(args, str(e))
    except PermissionError as e:
        return _refuse(args, f"no permission to write {e.filename} (run as root); nothing was changed.")
    restart_error = _restart(args)
    if args.json:
        print(json.dumps({"ok": True, "from": left, "to": to, "restart_error": restart_error}))
    else:
        print(f"release {to} is current again (release {left} is kept; `mynactl rollback` returns to it).")
    return 0 if not restart_error else 1


def cmd_versions(args) -> int:
    from mynad.release.switch import versions_report

    rep = versions_report(_layout(args))
    if args.json:
        print(json.dumps(rep, ensure_ascii=False))
        return 0
    if not rep["installed"]:
        print(f"no release is installed under {rep['root']}")
        return 0
    trial = rep["trial"]
    for v in rep["installed"]:
        tags = [t for t, on in (("current", v == rep["current"]), ("previous", v == rep["previous"]),
                                ("on trial", trial is not None and v == trial["version"])) if on]
        print(f"  {v:<12} {', '.join(tags)}")
    if trial:
        print(f"trial: {trial['version']} has {trial['tries_left']} start(s) left before it goes back to "
              f"{trial['previous']}")
    if rep["bad"]:
        print("rolled back (not activated again without --force): " + ", ".join(rep["bad"]))
    if rep["last_event"]:
        print(f"last: {rep['last_event']}")
    return 0


def add_release_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", default="/", help="install root (default /; another root never touches systemd)")
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("update", help="install a signed release bundle and switch to it on trial")
    p.add_argument("bundle", help="myna-reader-<version>-<arch>.tar")
    p.add_argument("--force", action="store_true",
                   help="allow an older (or rolled-back) version; the signature is always checked")
    p.add_argument("--no-restart", action="store_true", help="switch, but do not restart mynad")
    p.add_argument("--python", default=None, help=argparse.SUPPRESS)  # the venv's base interpreter (tests)
    p.add_argument("--confirm-after", type=float, default=None, help=argparse.SUPPRESS)
    common(p)
    p.set_defaults(func=cmd_update)
    p = sub.add_parser("rollback", help="go back to the previous release")
    p.add_argument("--no-restart", action="store_true", help="switch, but do not restart mynad")
    common(p)
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("versions", help="installed releases, the current one, a trial, rolled-back ones")
    common(p)
    p.set_defaults(func=cmd_versions, no_restart=True)

