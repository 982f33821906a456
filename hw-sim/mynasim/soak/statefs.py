"""The daemon's state directory on a small filesystem of its own, so the soak can fill it.

A loop-mounted ext4 image (``truncate`` + ``mkfs.ext4 -m 0`` + ``mount -o loop``) makes
ENOSPC and fsync real: SQLite's WAL, the open-visit record and every ``os.replace`` meet
a full disk exactly as on the Pi's SD card. It needs root and a loop device; without
them we fall back to ``tmpfs size=`` (ENOSPC is real, fsync is not) and say so.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

BALLAST = ".soak-ballast"


class StateFsError(RuntimeError):
    """The state filesystem could not be set up or torn down; the message says why."""


def _run(*cmd: str) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise StateFsError(f"{' '.join(cmd)} failed ({p.returncode}): {(p.stderr or p.stdout).strip()}")


class StateFilesystem:
    def __init__(self, mount_point: Path, image: Path, size_mb: int = 16) -> None:
        self.mount_point = Path(mount_point)
        self.image = Path(image)
        self.size_mb = size_mb
        self.kind: str | None = None      # "ext4 on loop" or "tmpfs"
        self.note = ""                    # why we fell back, if we did
        self.full = False

    def mount(self) -> str:
        """Mount it; returns what was mounted (for the summary)."""
        self.mount_point.mkdir(parents=True, exist_ok=True)
        try:
            self.image.unlink(missing_ok=True)
            _run("truncate", "-s", f"{self.size_mb}M", str(self.image))
            _run("mkfs.ext4", "-q", "-F", "-m", "0", str(self.image))  # -m 0: no blocks kept for root
            _run("mount", "-o", "loop", str(self.image), str(self.mount_point))
            self.kind = "ext4 on loop"
        except (StateFsError, FileNotFoundError) as e:
            self.note = f"loop mount failed ({e}); tmpfs instead: ENOSPC is real, fsync is not"
            try:
                _run("mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0755", "soak-state",
                     str(self.mount_point))
            except (StateFsError, FileNotFoundError) as e2:
                raise StateFsError(f"no small filesystem for the state directory: {e}; {e2}") from None
            self.kind = "tmpfs"
        return f"{self.kind}, {self.size_mb} MiB" + (f" ({self.note})" if self.note else "")

    def fill(self) -> int:
        """Write a ballast file until the filesystem says ENOSPC; returns its size in bytes."""
        path = self.mount_point / BALLAST
        chunk = b"\0" * (256 * 1024)
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if len(chunk) > 1:  # fill the last partial blocks too
                        chunk = chunk[: max(1, len(chunk) // 8)]
                        continue
                    break
            try:
                os.fsync(fd)  # ext4 allocates delayed blocks here: ENOSPC may come now
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        finally:
            os.close(fd)
        self.full = True
        return written

    def free(self) -> None:
        try:
            (self.mount_point / BALLAST).unlink()
        except FileNotFoundError:
            pass
        self.full = False

    def unmount(self) -> None:
        self.free()
        if self.kind is None:
            return
        try:
            _run("umount", str(self.mount_point))
        except StateFsError:
            _run("umount", "-l", str(self.mount_point))  # something still holds a file: detach lazily
        self.kind = None
        if self.image.exists():
            self.image.unlink()

    def copy_out(self, dest: Path) -> None:
        """Keep the state files (outbox, WAL) for the audit and the run folder after unmounting."""
        dest.mkdir(parents=True, exist_ok=True)
        for p in self.mount_point.iterdir():
            if p.is_file() and p.name != BALLAST:
                shutil.copy2(p, dest / p.name)
