"""Synthesized prompts on disk, one WAV per (engine, text), so each is made once.

A prompt costs 0.2–0.6 s of CPU here and several times that on a Pi 4 (docs/voice.md);
the same few dozen prompts are heard on every visit. The cache is content-addressed
(SHA-256 of engine id and text), so a new engine version or voice simply misses, two
processes may share one folder (files appear by atomic rename), and a damaged file is
treated as a miss and replaced. Prompts hold no secret (``mynad.voice.prompts``
withholds them), so they may be written to disk. The folder is bounded: past
``max_files`` the least recently used prompts are removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import wave
from pathlib import Path

from myna_drivers.voice import Clip, read_wav, write_wav

log = logging.getLogger("mynad.voice")

MAX_FILES = 4000  # ~7 languages x ~150 distinct prompts x a few parameter values, ~1 GB at most at 48 kHz


class PromptCache:
    def __init__(self, folder: Path, max_files: int = MAX_FILES) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_files = max(1, int(max_files))

    def path(self, engine_id: str, text: str) -> Path:
        digest = hashlib.sha256(f"{engine_id}\0{text}".encode("utf-8")).hexdigest()
        return self.folder / f"{digest[:40]}.wav"

    def get(self, engine_id: str, text: str) -> Clip | None:
        p = self.path(engine_id, text)
        try:
            clip = read_wav(p)
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, wave.Error) as e:  # a torn or foreign file: make it again
            log.info("voice cache: %s unreadable (%s); making it again", p.name, e)
            return None
        try:
            os.utime(p)  # recently used: kept when the folder is trimmed
        except OSError:
            pass
        return clip

    def put(self, engine_id: str, text: str, clip: Clip) -> Path:
        p = self.path(engine_id, text)
        fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".wav", dir=self.folder)
        os.close(fd)
        try:
            write_wav(Path(tmp), clip)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._trim()
        return p

    def _trim(self) -> None:
        files = [f for f in self.folder.glob("*.wav") if not f.name.startswith(".")]
        if len(files) <= self.max_files:
            return

        def age(f: Path) -> float:
            try:
                return f.stat().st_mtime
            except OSError:
                return 0.0

        for f in sorted(files, key=age)[: len(files) - self.max_files]:
            f.unlink(missing_ok=True)
