"""Offline speech engines: text in, ``Clip`` (16-bit mono samples) out.

Japanese: Open JTalk through ``pyopenjtalk-plus`` (MIT), whose wheel carries the
NAIST-jdic dictionary (BSD) and the HTS voice "Mei" (CC BY 3.0, Nagoya Institute
of Technology), with aarch64 wheels. Nothing is fetched at run time: the one part
of that package that downloads (the optional "tsqyomi" reading model, through
huggingface_hub, which is not installed) is never enabled here. Debian's own
``open-jtalk`` was measured too, but Debian 12 main has no HTS voice for it
(``hts-voice-nitech-jp-atr503-m001`` is not installable), see docs/voice.md.

Other languages: espeak-ng from Debian, one process per prompt (about 50 ms here).
espeak-ng's Japanese is never used (it reads kanji as "Chinese letter").

``Speech`` picks the engine for a language and keeps every prompt it made in a
``PromptCache`` on disk, so a prompt is synthesized once per text per reader, not
once per visit. It is called from one worker thread (``mynad.shell.voiceio``).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from myna_drivers.voice import Clip
from mynad.voice.cache import PromptCache

log = logging.getLogger("mynad.voice")

PEAK = 0.8 * 32767  # every engine's output is brought to the same peak (-2 dBFS)
JA_SPEED = 1.0      # Open JTalk's speaking rate; Mei at 1.0 is already unhurried
ESPEAK_WPM = 150    # espeak-ng's default is 175 words a minute: too fast for a counter
ESPEAK_TIMEOUT_S = 20.0

# Language -> espeak-ng voice. Portuguese is Brazil's: Japan's Portuguese speakers are
# almost all Brazilian. Chinese is Mandarin (简体 texts). No Tagalog voice exists in
# espeak-ng 1.51 (prompts.SPOKEN_INSTEAD speaks English for it); never "ja".
ESPEAK_VOICES = {"en": "en-us", "zh": "cmn", "ko": "ko", "vi": "vi", "pt": "pt-br"}


class SpeechError(Exception):
    """A prompt could not be synthesized; the message says which engine and why."""


class Engine(Protocol):
    id: str  # changes whenever the same text would sound different (engine, version, voice, rate)

    def synthesize(self, text: str) -> Clip: ...


def _normalized(x: np.ndarray, rate: int) -> Clip:
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (PEAK / peak)
    return Clip(np.clip(np.round(x), -32768, 32767).astype(np.int16), int(rate))


class OpenJTalk:
    """Japanese through pyopenjtalk-plus (dictionary and voice from its wheel)."""

    def __init__(self, speed: float = JA_SPEED) -> None:
        try:
            import pyopenjtalk  # lazy: ~0.7 s and ~100 MB of mapped dictionary, only when Japanese is spoken
        except ImportError as e:
            raise SpeechError(f"Japanese speech needs pyopenjtalk-plus (pinned in pyproject.toml): {e}") from e
        from importlib.metadata import version

        self._pj = pyopenjtalk
        self.speed = float(speed)
        self.id = f"openjtalk-plus-{version('pyopenjtalk-plus')}-mei_normal-x{self.speed:g}"
        self._lock = threading.Lock()  # the package keeps one global engine

    def synthesize(self, text: str) -> Clip:
        with self._lock:
            try:
                x, rate = self._pj.tts(text, speed=self.speed, run_marine=False, use_tsqyomi=False)
            except Exception as e:
                raise SpeechError(f"Open JTalk could not speak a prompt: {e}") from e
        return _normalized(x, rate)


class OpenJTalkWorker:
    """Japanese through pyopenjtalk-plus in a child process (``mynad.voice.synth_worker``),
    started on the first sentence the cache lacks and exiting by itself when idle: the daemon
    never holds the dictionary. Same voice, same ``id`` (so the same cache) as ``OpenJTalk``."""

    def __init__(self, speed: float = JA_SPEED) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version("pyopenjtalk-plus")
        except PackageNotFoundError as e:
            raise SpeechError(f"Japanese speech needs pyopenjtalk-plus (pinned in pyproject.toml): {e}") from e
        self.speed = float(speed)
        self.id = f"openjtalk-plus-{ver}-mei_normal-x{self.speed:g}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _worker(self) -> subprocess.Popen[bytes]:
        p = self._proc
        if p is None or p.poll() is not None:
            import sys

            p = self._proc = subprocess.Popen([sys.executable, "-m", "mynad.voice.synth_worker"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL)
        return p

    def synthesize(self, text: str) -> Clip:
        import json

        with self._lock:
            for attempt in (1, 2):  # the worker may have just exited for idleness: start it again once
                p = self._worker()
                assert p.stdin is not None and p.stdout is not None
                try:
                    p.stdin.write(json.dumps({"text": text, "speed": self.speed}).encode() + b"\n")
                    p.stdin.flush()
                    head = p.stdout.readline()
                except (BrokenPipeError, OSError):
                    head = b""
                if head:
                    break
                p.wait()
                self._proc = None
            else:
                raise SpeechError("the Open JTalk worker process ended without answering")
            reply = json.loads(head)
            if "error" in reply:
                raise SpeechError(f"Open JTalk could not speak a prompt: {reply['error']}")
            raw = p.stdout.read(2 * int(reply["n"]))
        return _normalized(np.frombuffer(raw, dtype="<i2"), int(reply["rate"]))

    def close(self) -> None:
        p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            assert p.stdin is not None
            p.stdin.close()  # the worker exits on end of input
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


class Espeak:
    """espeak-ng (Debian) for one voice; text goes in on stdin, never on the command line."""

    def __init__(self, voice: str, wpm: int = ESPEAK_WPM, exe: str | None = None) -> None:
        self.exe = exe or shutil.which("espeak-ng") or ""
        if not self.exe:
            raise SpeechError("speech in languages other than Japanese needs espeak-ng (Debian package espeak-ng)")
        self.voice = voice
        self.wpm = int(wpm)
        self.id = f"espeak-ng-{_espeak_version(self.exe)}-{voice}-{self.wpm}wpm"

    def synthesize(self, text: str) -> Clip:
        cmd = [self.exe, "-b", "1", "-v", self.voice, "-s", str(self.wpm), "--stdout"]
        try:
            r = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=ESPEAK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SpeechError(f"espeak-ng ({self.voice}) did not finish a prompt in {ESPEAK_TIMEOUT_S:g} s") from None
        if r.returncode != 0:
            why = r.stderr.decode(errors="replace").strip() or f"exit status {r.returncode}"
            raise SpeechError(f"espeak-ng ({self.voice}) failed: {why}")
        rate, samples = parse_wav_stream(r.stdout)
        return _normalized(samples, rate)


def parse_wav_stream(data: bytes) -> tuple[int, np.ndarray]:
    """Rate and 16-bit mono samples of a WAV written to a pipe.

    espeak-ng writes its header before it knows the length (sizes 0 or 0x7fffffff),
    which the ``wave`` module refuses, so the chunks are walked by hand and the data
    chunk runs to the end of the stream.
    """
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError("the speech engine did not produce a WAV stream")
    pos, rate, bits, channels = 12, 0, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if cid == b"fmt ":
            channels = int.from_bytes(data[body + 2:body + 4], "little")
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            bits = int.from_bytes(data[body + 14:body + 16], "little")
        elif cid == b"data":
            if channels != 1 or bits != 16 or rate <= 0:
                raise SpeechError(f"unexpected WAV format from the speech engine ({channels} ch, {bits} bit)")
            end = len(data) if size in (0, 0xFFFFFFFF, 0x7FFFFFFF) or body + size > len(data) else body + size
            raw = data[body:end]
            return rate, np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
        pos = body + size + (size & 1)
    raise SpeechError("the speech engine's WAV stream has no data")


def _espeak_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, timeout=5).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.split()
    for i, w in enumerate(words):
        if w.rstrip(":") == "NG" and i + 2 < len(words):
            return words[i + 2].rstrip(":") if words[i + 1].startswith("text") else words[i + 1].rstrip(":")
    return "unknown"


def engine_for(lang: str) -> Engine:
    """A new engine for ``lang`` (a language of ``mynad.voice.prompts.LANGS`` after SPOKEN_INSTEAD)."""
    if lang == "ja":
        return OpenJTalkWorker()  # the dictionary lives in a child process, not in mynad
    voice = ESPEAK_VOICES.get(lang)
    if voice is None:
        raise SpeechError(f"no offline voice for language {lang!r}")
    return Espeak(voice)


class Speech:
    """Text to clip per language: engines made on first use, every result cached on disk."""

    def __init__(self, cache: PromptCache | None = None) -> None:
        self.cache = cache
        self._engines: dict[str, Engine] = {}
        self.synthesized = 0  # cache misses, for the bench and the tests
        self.hits = 0

    def close(self) -> None:
        """End engine processes (the Japanese worker); they would exit by themselves when idle."""
        for e in self._engines.values():
            close = getattr(e, "close", None)
            if callable(close):
                close()
        self._engines.clear()

    def engine(self, lang: str) -> Engine:
        e = self._engines.get(lang)
        if e is None:
            e = self._engines[lang] = engine_for(lang)
        return e

    def clip(self, text: str, lang: str) -> Clip:
        engine = self.engine(lang)
        if self.cache is not None:
            hit = self.cache.get(engine.id, text)
            if hit is not None:
                self.hits += 1
                return hit
        clip = engine.synthesize(text)
        self.synthesized += 1
        if self.cache is not None:
            try:
                self.cache.put(engine.id, text, clip)
            except OSError as e:  # a full disk costs speed, not speech
                log.warning("voice cache: cannot store a prompt (%s)", e.strerror or e)
        return clip

    def clips(self, parts: "list[tuple[str, str]] | tuple[tuple[str, str], ...]") -> Clip:
        """(text, voice language) parts (``mynad.voice.prompts.spoken_parts``) as one clip.

        Each sentence is synthesized and cached on its own: sentences recur across screens
        ("10番、終了する。"), and a prompt with a new number in it (seconds, tries left) costs
        only the sentence that holds the number, about 0.1-0.3 s here instead of a whole
        10-20 s prompt's 1 s (bench/voice_bench.py).
        """
        made = [trimmed(self.clip(sentence, lang)) for text, lang in parts for sentence in sentences(text, lang)]
        if not made:
            raise SpeechError("nothing to say")
        return joined(made, gap_s=SENTENCE_GAP_S)


SENTENCE_GAP_S = 0.12
_SENTENCE_END = {"ja": re.compile(r"(?<=[。！？!?])"), "zh": re.compile(r"(?<=[。！？!?])")}
_SENTENCE_END_LATIN = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str, lang: str) -> list[str]:
    """``text`` cut after each full stop (the units that are synthesized and cached)."""
    pattern = _SENTENCE_END.get(lang, _SENTENCE_END_LATIN)
    return [x.strip() for x in pattern.split(text) if x.strip()]


def trimmed(clip: Clip, lead_s: float = 0.04, tail_s: float = 0.12, floor_dbfs: float = -45.0) -> Clip:
    """The clip without the long silences engines put around each utterance (0.25-0.35 s
    each side for Open JTalk), so joined sentences keep a natural pause, not a gap."""
    x = clip.samples
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 32767 * 10 ** (floor_dbfs / 20))
    if loud.size == 0:
        return clip
    a = max(0, int(loud[0]) - int(lead_s * clip.rate))
    b = min(len(x), int(loud[-1]) + 1 + int(tail_s * clip.rate))
    return Clip(x[a:b], clip.rate)


def joined(clips: list[Clip], gap_s: float = 0.25) -> Clip:
    """Clips of several voices as one, at the highest rate among them, with a short pause
    between (upsampling by linear interpolation: speech carries nothing near the band edge)."""
    rate = max(c.rate for c in clips)
    gap = np.zeros(int(gap_s * rate), dtype=np.int16)
    out: list[np.ndarray] = []
    for i, c in enumerate(clips):
        x = c.samples
        if c.rate != rate and len(x):
            n = int(round(len(x) * rate / c.rate))
            x = np.round(np.interp(np.arange(n) * (c.rate / rate), np.arange(len(x)), x)).astype(np.int16)
        if i:
            out.append(gap)
        out.append(x.astype(np.int16, copy=False))
    return Clip(np.concatenate(out) if out else np.zeros(0, dtype=np.int16), rate)


def default_cache_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "voice-cache"
