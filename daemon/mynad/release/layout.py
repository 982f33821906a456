"""Where an installed reader keeps its releases, its config and its site state.

Everything hangs under one ROOT prefix ("/" on a reader) so that tests install into a
scratch directory with exactly the paths a Pi uses. The split is the point of the design:
releases (code, venv, models) are replaceable and live under opt/; what belongs to the site
(config, keys, outbox, calibration, staff password) lives under etc/ and var/lib/ and is
never inside a release directory, so no update or rollback can touch it.

Stdlib only: this module is also packed into the stand-alone ``myna-bootcheck``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Release directory names are plain dotted versions ("0.9.2"); anything else found under
# releases/ (a half-unpacked ".incoming-..." dir, a stray file) is not a release.
VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}$")
# Written last (and fsync'd) into a release directory: its venv and files are complete.
COMPLETE_MARK = ".complete"


def version_tuple(v: str) -> tuple[int, ...]:
    """Order of dotted-integer versions; ValueError for anything else (never a guess)."""
    if not VERSION_RE.match(v):
        raise ValueError(f"{v!r} is not a release version (dotted integers, e.g. 0.9.2)")
    return tuple(int(p) for p in v.split("."))


@dataclass(frozen=True)
class Layout:
    """The install paths under ``root``; pure path arithmetic, no I/O."""

    root: Path = Path("/")

    @property
    def opt(self) -> Path:
        return self.root / "opt/myna-reader"

    @property
    def releases(self) -> Path:
        return self.opt / "releases"

    @property
    def current(self) -> Path:
        """Symlink ``current -> releases/<version>`` (relative, so the tree can be inspected
        from another root); replaced atomically, never edited."""
        return self.opt / "current"

    @property
    def bin_dir(self) -> Path:
        return self.opt / "bin"

    @property
    def bootcheck(self) -> Path:
        """Outside every release: it must run when the current release cannot run at all."""
        return self.bin_dir / "myna-bootcheck"

    @property
    def etc(self) -> Path:
        return self.root / "etc/myna-reader"

    @property
    def config(self) -> Path:
        return self.etc / "mynad.toml"

    @property
    def keys_dir(self) -> Path:
        return self.etc / "release-keys"

    @property
    def state(self) -> Path:
        return self.root / "var/lib/myna-reader"

    @property
    def update_dir(self) -> Path:
        return self.state / "update"

    @property
    def state_file(self) -> Path:
        """previous release, the trial in progress, releases known bad (switch.UpdateState)."""
        return self.update_dir / "state.json"

    def release_dir(self, version: str) -> Path:
        version_tuple(version)  # never a path built from an unchecked string
        return self.releases / version

    def mynad(self, version: str | None = None) -> Path:
        """The installed daemon's entry point (through ``current`` unless a version is given):
        what systemd's ExecStart runs, and what an end-to-end test starts."""
        base = self.current if version is None else self.release_dir(version)
        return base / "venv/bin/mynad"

    def mynactl(self, version: str | None = None) -> Path:
        base = self.current if version is None else self.release_dir(version)
        return base / "venv/bin/mynactl"

    # ------------------------------------------------------------ reading the tree

    def current_version(self) -> str | None:
        """The release ``current`` points at, or None (not installed yet / dangling name)."""
        try:
            target = os.readlink(self.current)
        except (FileNotFoundError, OSError):
            return None
        name = Path(target).name
        return name if VERSION_RE.match(name) else None

    def is_complete(self, version: str) -> bool:
        return (self.release_dir(version) / COMPLETE_MARK).is_file()

    def installed(self) -> list[str]:
        """Complete releases, oldest first."""
        if not self.releases.is_dir():
            return []
        out = [p.name for p in self.releases.iterdir()
               if VERSION_RE.match(p.name) and p.is_dir() and not p.is_symlink()
               and (p / COMPLETE_MARK).is_file()]
        return sorted(out, key=version_tuple)


def running_release(prefix: str | None = None) -> tuple[Layout, str] | None:
    """The layout and version of the release this interpreter runs from, or None.

    An installed daemon runs as ROOT/opt/myna-reader/releases/<v>/venv/bin/python (the venv's
    scripts name that real path, not ``current``), so ``sys.prefix`` says both where the
    install root is and which release this process is: no config key is needed for the daemon
    to confirm its own trial, and an old process can never confirm a newer release.
    """
    p = Path(prefix if prefix is not None else sys.prefix)
    try:
        if (p.name == "venv" and p.parent.parent.name == "releases"
                and p.parents[2].name == "myna-reader" and p.parents[3].name == "opt"
                and VERSION_RE.match(p.parent.name)):
            return Layout(p.parents[4]), p.parent.name
    except IndexError:
        pass
    return None
