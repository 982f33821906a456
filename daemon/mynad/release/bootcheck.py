"""``myna-bootcheck``: runs before every start of mynad (ExecStartPre=+, as root) and from
myna-rollback.service when systemd gives up on mynad (OnFailure=).

It is installed OUTSIDE the releases, as a zip application of the stdlib-only modules
layout/atomic/switch/bootcheck run by Debian's /usr/bin/python3, because it has to work when
the release on trial cannot run at all (a broken venv, a missing library). During a trial each
start spends one try; a trial out of tries or past its deadline is switched back to the
previous release, which is then started by the same systemd start. It says one plain sentence
on stderr (the journal) when it changes something, and always exits 0: a boot check that
failed must never be what keeps the reader from starting.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .layout import Layout
from .switch import at_start

# The modules packed into myna-bootcheck (all stdlib-only; bundle/keys need cryptography).
PACKED = ("layout.py", "atomic.py", "switch.py", "bootcheck.py")
MAIN = "import sys\nfrom myna_release.bootcheck import main\nsys.exit(main())\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="myna-bootcheck", description="count a trial start of mynad; roll back "
                                "a release that did not start healthy")
    p.add_argument("--root", default="/", help="install root (default /)")
    p.add_argument("--unit-failed", action="store_true",
                   help="systemd gave up on mynad (OnFailure=): roll a release on trial back now")
    p.add_argument("--restart", metavar="UNIT",
                   help="after a rollback, reset-failed and start this unit (used with --unit-failed)")
    p.add_argument("--check", action="store_true", help="only read the state and exit (installer self-test)")
    p.add_argument("--rollback", action="store_true",
                   help="go back to the previous release by hand (the technician console's fallback when "
                        "the current release cannot run its own mynactl); exit 1 when there is none")
    args = p.parse_args(argv)
    layout = Layout(Path(args.root))
    if args.rollback:
        from .switch import SwitchError, rollback

        try:
            cur, to = rollback(layout)
        except SwitchError as e:
            print(f"myna-bootcheck: {e}", file=sys.stderr)
            return 1
        print(f"myna-bootcheck: release {cur} was rolled back by hand to {to}.")
        if args.restart:
            subprocess.run(["systemctl", "restart", args.restart], check=False)
        return 0
    if args.check:
        from .switch import load_state

        load_state(layout)
        print("myna-bootcheck: ok")
        return 0
    try:
        d = at_start(layout, unit_failed=args.unit_failed)
    except Exception as e:  # never the reason mynad does not start
        print(f"myna-bootcheck: the update state could not be checked ({e}); starting the current release.",
              file=sys.stderr)
        return 0
    if d.message:
        print(f"myna-bootcheck: {d.message}", file=sys.stderr)
    if d.action == "rollback" and args.restart:
        for cmd in (["systemctl", "reset-failed", args.restart], ["systemctl", "--no-block", "start", args.restart]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"myna-bootcheck: {' '.join(cmd)} failed: {r.stderr.strip()}", file=sys.stderr)
    return 0


def pack(source_dir: Path, dest: Path, python: str = "/usr/bin/python3") -> None:
    """Write ``dest`` as an executable zip application of this package's stdlib-only modules
    (deterministic: fixed timestamps, sorted), replaced atomically after it ran ``--check``."""
    from .atomic import fsync_dir, write_bytes

    buf = io.BytesIO()
    buf.write(f"#!{python} -Es\n".encode())  # root runs it: no PYTHON* variables, no user site
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        add("__main__.py", MAIN.encode())
        add("myna_release/__init__.py", b"")
        for name in PACKED:
            add(f"myna_release/{name}", (Path(source_dir) / name).read_bytes())
    data = buf.getvalue()
    dest.parent.mkdir(parents=True, exist_ok=True)
    probe = dest.with_name(f".{dest.name}.probe")
    write_bytes(probe, data, 0o755)
    try:
        r = subprocess.run([python, str(probe), "--check", "--root", "/nonexistent"], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0 or "ok" not in r.stdout:
            raise RuntimeError(f"the new boot check does not run: {r.stderr.strip() or r.stdout.strip()}")
        os.replace(probe, dest)
        fsync_dir(dest.parent)
    finally:
        probe.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
