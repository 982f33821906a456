"""Persistent PIN retry counters, per profile and card, in ``state_dir/card-counters.json``.

Counters survive card removal and simulator restarts (the chip's counters live in
EEPROM). A fresh state_dir means a fresh card: every counter starts at the
profile's initial value.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


class CardState:
    FILE = "card-counters.json"

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / self.FILE
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, int]] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = {str(k): {str(r): int(n) for r, n in v.items()} for k, v in raw.items()}
            except (ValueError, AttributeError):
                self._data = {}

    def tries(self, profile_key: str, ref: str, initial: int) -> int:
        with self._lock:
            return self._data.get(profile_key, {}).get(ref, initial)

    def set_tries(self, profile_key: str, ref: str, value: int) -> None:
        with self._lock:
            self._data.setdefault(profile_key, {})[ref] = int(value)
            self._save()

    def reset(self, profile_key: str | None = None) -> None:
        """Forget counters (of one profile, or all): the card(s) return to their initial values."""
        with self._lock:
            if profile_key is None:
                self._data.clear()
            else:
                self._data.pop(profile_key, None)
            self._save()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return json.loads(json.dumps(self._data))

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self._data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
