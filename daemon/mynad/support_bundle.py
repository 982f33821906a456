"""The support bundle: what support needs to diagnose a reader, and nothing personal or secret.

One ``.tar.gz`` with:

* ``versions.json``   this software, Python, the OS release, the installed releases
                       (``mynactl versions --json`` when that tool is installed), package versions;
* ``config.json``     the daemon's config file, parsed, with every secret-looking value masked
                       (keys, passwords, hashes, tokens, PINs: see ``SECRET_KEY``);
* ``status.json``     the running daemon's status (a snapshot without secrets by construction);
* ``selftest.json``   the daemon's last self-test results;
* ``outbox.json``     counts of what is owed to the host, by message type; never a message body
                       (bodies carry certificates, signatures and the host's patient data);
* ``journal.txt``     recent journal lines of mynad (or a sentence saying there is no journal);
* ``system.txt``      kernel, uptime, clock synchronisation, free space of the state directory.

What is never read into it: the outbox rows, the staff password file, the host key file, the
face calibration, camera frames, screens. The members are made in memory and written with
fixed metadata (uid/gid 0, mode 0644), so the bundle never reveals user names either.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path
from typing import Any

SECRET_KEY = re.compile(r"(pass|secret|token|hash|psk|pin$|(^|_)key($|_)|credential|private)", re.I)
MASK = "***masked***"


def mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of a parsed config with the value of every secret-looking key replaced."""
    if isinstance(value, dict):
        return {k: mask_secrets(v, k) for k, v in value.items()}
    if key and SECRET_KEY.search(key):
        return MASK
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def masked_config(config_path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        return {"error": f"cannot read {config_path}: {e}"}
    return {"path": str(config_path), "config": mask_secrets(raw)}


def outbox_counts(state_dir: Path) -> dict[str, Any]:
    """What is owed to the host, counted (read-only; the daemon may be running)."""
    db = Path(state_dir) / "outbox.sqlite"
    if not db.exists():
        return {"pending": 0, "note": f"no outbox at {db}"}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            pending, oldest = con.execute("select count(*), min(stored) from outbox").fetchone()
            by_type = dict(con.execute("select type, count(*) from outbox group by type order by type").fetchall())
            rejected = con.execute("select count(*) from rejected").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as e:
        return {"error": f"cannot read the outbox: {e}"}
    return {"pending": pending, "pending_by_type": by_type, "rejected": rejected, "oldest_pending": oldest}


def journal(lines: int = 2000, priority: str | None = None, unit: str = "mynad") -> tuple[bool, str]:
    """(there is a journal, its text or a plain sentence why not)."""
    exe = shutil.which("journalctl")
    if exe is None:
        return False, "no journal on this machine: journalctl is not installed (mynad logs go to its stderr)"
    cmd = [exe, "-u", unit, "-n", str(lines), "--no-pager", "-o", "short-iso"]
    if priority:
        cmd += ["-p", priority]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"journalctl failed: {e}"
    text = out.stdout.strip()
    err = out.stderr.strip()
    if out.returncode != 0 or "No journal files were found" in err:
        return False, f"no journal to read here ({err.splitlines()[0] if err else f'journalctl exit {out.returncode}'})"
    if not text or text == "-- No entries --":
        return True, f"the journal has no lines of {unit}" + (f" at priority {priority} or above" if priority else "")
    return True, text


def clock_state() -> dict[str, Any]:
    """Whether the system clock is synchronised (adjtimex; timedatectl as the second opinion)."""
    state: dict[str, Any] = {}
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        rc = libc.adjtimex(buf)
        if rc >= 0:
            state["synchronised"] = rc != 5  # TIME_ERROR: the kernel clock is not synchronised
            state["source"] = "adjtimex"
    except (OSError, AttributeError):
        pass
    exe = shutil.which("timedatectl")
    if exe is not None:
        try:
            out = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                                 timeout=5)
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                state["synchronised"] = out.stdout.strip() == "yes"
                state["source"] = "timedatectl"
        except (OSError, subprocess.TimeoutExpired):
            pass
    state.setdefault("synchronised", None)
    return state


def versions(mynactl: list[str] | None = None) -> dict[str, Any]:
    from importlib import metadata

    from mynad import __version__

    out: dict[str, Any] = {"mynad": __version__, "python": sys.version.split()[0], "machine": platform.machine()}
    try:
        out["os_release"] = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines()
                                 if "=" in line)
    except OSError:
        pass
    pkgs = {}
    for name in ("myna-reader", "pyscard", "onnxruntime", "numpy", "pillow", "cryptography", "pyserial"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out["packages"] = pkgs
    if mynactl:
        try:
            r = subprocess.run([*mynactl, "versions", "--json"], capture_output=True, text=True, timeout=30)
            out["releases"] = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else \
                {"note": (r.stderr.strip().splitlines() or ["mynactl versions is not available"])[-1]}
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            out["releases"] = {"note": f"mynactl versions failed: {e}"}
    return out


def system_text(state_dir: Path) -> str:
    lines = [f"kernel: {platform.release()} {platform.machine()}"]
    try:
        up = float(Path("/proc/uptime").read_text().split()[0])
        lines.append(f"uptime: {up / 3600:.1f} h")
    except OSError:
        pass
    lines.append(f"clock: {json.dumps(clock_state())}")
    try:
        du = shutil.disk_usage(state_dir)
        lines.append(f"state dir {state_dir}: {du.free // 2**20} MiB free of {du.total // 2**20} MiB")
    except OSError as e:
        lines.append(f"state dir {state_dir}: {e}")
    lines.append(f"made: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
    return "\n".join(lines) + "\n"


def build(out_path: Path, *, config_path: Path, state_dir: Path, status: dict[str, Any] | None,
          selftests: dict[str, Any] | None, mynactl: list[str] | None = None,
          journal_lines: int = 2000) -> Path:
    """Write the bundle to ``out_path`` (0600, replaced atomically) and return it."""
    has_journal, journal_text = journal(journal_lines)
    members: list[tuple[str, bytes]] = [
        ("versions.json", _json(versions(mynactl))),
        ("config.json", _json(masked_config(config_path))),
        ("status.json", _json(status if status is not None else {"note": "the daemon did not answer"})),
        ("selftest.json", _json(selftests or {})),
        ("outbox.json", _json(outbox_counts(state_dir))),
        ("journal.txt", (journal_text + "\n").encode()),
        ("system.txt", system_text(state_dir).encode()),
    ]
    top = out_path.name.removesuffix(".tar.gz")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    now = int(time.time())
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), now, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out_path)
    return out_path


def default_name(reader_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", reader_id) or "reader"
    return f"myna-support-{safe}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def _json(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n").encode()
