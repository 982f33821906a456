"""Power-cut-safe file operations for the installer and the boot check (stdlib only).

A reader is unplugged without warning, also in the middle of an update. Every state change
here is either a file replaced by rename or a symlink replaced by rename, each followed by an
fsync of the directory, so after a power cut the old state or the new one is on disk, never
a mix. (mynad.durable uses these for the daemon; this package must stay stand-alone: it runs under
Debian's python3 at first install and inside ``myna-bootcheck``.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator


def fsync_dir(folder: Path) -> None:
    """A rename, link or unlink in ``folder`` is durable only once the folder is fsync'd."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o644, *, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` durably (temp file beside it, fsync, rename, dir fsync), as
    a file of ``mode`` whatever the umask and, when given, ``owner`` (uid, gid). Raises OSError;
    the temporary file never stays behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, owner[0], owner[1])
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, obj: Any, mode: int = 0o644) -> None:
    write_bytes(path, (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode(), mode)


def replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically: a new symlink under a temp name renamed over it
    (rename(2) replaces the old link in one step; there is no moment without ``current``)."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(link.parent)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``folder`` itself (no lock file to own or clean up), so that
    mynactl update, the boot check and the daemon's confirmation never interleave."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
