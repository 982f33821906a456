"""Numbered output files of the simulated devices (screen PNGs, spoken-prompt WAVs).

``0001-idle.png``, ``0002-reading.png``, ...: the number keeps their order when a person
lists the folder, and continues after the files already there, so a daemon restart in the
same run folder (the soak kills it on purpose) never overwrites an earlier frame or prompt.
"""

from __future__ import annotations

import re
from pathlib import Path

_NUMBERED = re.compile(r"(\d+)-")


class NumberedFiles:
    def __init__(self, folder: Path, suffix: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.count = max((int(m.group(1)) for p in self.folder.glob(f"[0-9][0-9][0-9][0-9]*-*{suffix}")
                          if (m := _NUMBERED.match(p.name))), default=0)

    def next(self, label: str) -> Path:
        """The path for the next file, named after ``label`` (made safe for a file name)."""
        self.count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label) or "file"
        return self.folder / f"{self.count:04d}-{safe}{self.suffix}"
