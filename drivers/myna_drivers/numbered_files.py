"""Numbered output files of the simulated devices (screen PNGs, spoken-prompt WAVs).

``0001-idle.png``, ``0002-reading.png``, ...: the number keeps their order when a person
lists the folder, and continues after the files already there, so a daemon restart in the
same run folder (the soak kills it on purpose) never overwrites an earlier frame or prompt.
``keep`` bounds the folder for long runs: a 10,000-visit soak speaks ~45 GB of WAVs, and
only the newest files are ever looked at.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

_NUMBERED = re.compile(r"(\d+)-")


class NumberedFiles:
    def __init__(self, folder: Path, suffix: str, keep: int = 0) -> None:
        """``keep`` > 0: only the newest ``keep`` files stay (older ones, also those of an
        earlier process in the same folder, are deleted as new ones come)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.keep = max(0, int(keep))
        existing = sorted((int(m.group(1)), p) for p in self.folder.glob(f"[0-9][0-9][0-9][0-9]*-*{suffix}")
                          if (m := _NUMBERED.match(p.name)))
        self.count = existing[-1][0] if existing else 0
        self._recent: deque[Path] = deque(p for _, p in existing)
        self._prune(self.keep)

    def next(self, label: str) -> Path:
        """The path for the next file, named after ``label`` (made safe for a file name)."""
        self.count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label) or "file"
        path = self.folder / f"{self.count:04d}-{safe}{self.suffix}"
        if self.keep:
            self._recent.append(path)
            self._prune(self.keep)
        return path

    def _prune(self, keep: int) -> None:
        while keep and len(self._recent) > keep:
            self._recent.popleft().unlink(missing_ok=True)
